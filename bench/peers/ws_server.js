// Peer: an idiomatic Node `ws` fan-out server speaking rtpush's minimal protocol
// ({type:"subscribe",channel}, {type:"publish",channel,data}); each publication is
// serialised once and sent to every subscriber with ws.send.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
const channels = new Map();

wss.on('connection', (ws) => {
  ws.subs = new Set();
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    if (m.type === 'subscribe') {
      let set = channels.get(m.channel);
      if (!set) channels.set(m.channel, (set = new Set()));
      set.add(ws);
      ws.subs.add(m.channel);
      ws.send(JSON.stringify({ type: 'subscribed', channel: m.channel }));
    } else if (m.type === 'publish') {
      const out = JSON.stringify({ type: 'update', channel: m.channel, data: m.data });
      const set = channels.get(m.channel);
      if (set) for (const c of set) if (c !== ws) c.send(out);
    }
  });
  ws.on('close', () => { for (const ch of ws.subs) channels.get(ch)?.delete(ws); });
});

server.listen(port, '127.0.0.1', () =>
  console.log(JSON.stringify({ event: 'listening', port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
