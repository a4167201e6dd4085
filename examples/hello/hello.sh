#!/bin/sh
echo "$GREETING from $(uname -m), built by buildkit-py"
