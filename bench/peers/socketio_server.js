// Peer: an idiomatic Socket.IO 4 fan-out server: rooms per channel, io.to(room).emit.
// rtload drives it over its WebSocket transport (Engine.IO v4 packets: open "0", connect
// "40", ping "2"/pong "3", events 42["name",payload]).
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const server = http.createServer();
// Transports: argv[3] (e.g. "polling,websocket", bench/polling_idle), else WebSocket only.
const transports = (process.argv[3] || 'websocket').split(',');
const io = new Server(server, { transports, perMessageDeflate: false, serveClient: false });

io.on('connection', (socket) => {
  socket.on('subscribe', (channel) => socket.join(channel));
  socket.on('publish', (m) => socket.to(m.channel).emit('update', m));
});

server.listen(port, '127.0.0.1', () =>
  console.log(JSON.stringify({ event: 'listening', port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
