// rtpush-client: the package's entry point.
export {RtpushClient, StreamTracker, normalizeScope, topicKey, keyWithin} from "./client.js";
export {Seed001Client, websocketClient, EVENT_HANDLERS} from "./seed001.js";
export {RtpushClient as default} from "./client.js";
