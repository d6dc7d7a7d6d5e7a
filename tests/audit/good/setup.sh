#!/bin/sh
set -eu
git config --global http.sslVerify true
curl -fsSL --proto '=https' https://example.org/keys.asc -o keys.asc
wget -q https://example.org/file.tar.gz
