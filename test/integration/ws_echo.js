// A plain Node `ws` echo server for rtcat's pipe-mode test: every text or binary message is
// sent back as it came. Listens on a free loopback port and prints {"port": N} once ready.
// `ws` comes from bench/node_modules (NODE_PATH); it exits on its own after 60 s.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(JSON.stringify({ port: wss.address().port })));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
setTimeout(() => process.exit(0), 60000).unref();
