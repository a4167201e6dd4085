from buildkit_py.cli.main import main

main()
