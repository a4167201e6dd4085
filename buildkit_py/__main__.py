from buildkit_py.cli.launch import main

main()
