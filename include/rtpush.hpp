//
// rtpush: umbrella header
//
#ifndef RTPUSH_HPP
#define RTPUSH_HPP

#include <rtpush/alerts.hpp>
#include <rtpush/auth.hpp>
#include <rtpush/client.hpp>
#include <rtpush/client_connection.hpp>
#include <rtpush/config.hpp>
#include <rtpush/engine.hpp>
#include <rtpush/error.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/ingest.hpp>
#include <rtpush/log.hpp>
#include <rtpush/protocol.hpp>
#include <rtpush/refresher.hpp>
#include <rtpush/server.hpp>
#include <rtpush/session.hpp>
#include <rtpush/source.hpp>
#include <rtpush/topic.hpp>
#include <rtpush/version.hpp>

#endif
