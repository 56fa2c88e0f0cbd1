//
// rtpush: waiting on the hub from a coroutine: a publication's seq (with an engine, once the
// cluster has ordered it) and a channel's state loaded from the cluster.
//
#ifndef RTPUSH_DETAIL_IO_ASYNC_HUB_HPP
#define RTPUSH_DETAIL_IO_ASYNC_HUB_HPP

#include <rtpush/hub.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace rtpush::detail {

// Publishes through the hub and completes with (error, seq) once the publication has its
// seq: at once without an engine, when the engine has ordered it otherwise (from the
// engine's thread: the completion is posted to the caller's executor).
template <class CompletionToken>
auto async_publish(hub& h, publication p, std::string topic_key, CompletionToken&& token) {
    namespace net = boost::asio;
    return net::async_initiate<CompletionToken, void(boost::system::error_code, std::uint64_t)>(
        [&h](auto handler, publication p, std::string topic_key) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            auto complete = [shared](boost::system::error_code ec, std::uint64_t seq) {
                auto ex = net::get_associated_executor(*shared);
                net::post(ex, [shared, ec, seq]() mutable {
                    auto& handler = *shared;
                    std::move(handler)(ec, seq);
                });
            };
            auto r = h.publish(std::move(p), complete, std::move(topic_key));
            if (!r.pending)
                complete(r.ec, r.seq);
        },
        token, std::move(p), std::move(topic_key));
}

// A page of past publications, completing with (error, page): at once, or from the engine's
// thread (posted to the caller's executor) when the engine reads elsewhere.
template <class CompletionToken>
auto async_read_history(hub& h, history_query q, CompletionToken&& token) {
    namespace net = boost::asio;
    return net::async_initiate<CompletionToken, void(boost::system::error_code, history_page)>(
        [&h](auto handler, history_query q) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            auto complete = [shared](boost::system::error_code ec, history_page page) {
                auto ex = net::get_associated_executor(*shared);
                net::post(ex, [shared, ec, page = std::move(page)]() mutable {
                    auto& handler = *shared;
                    std::move(handler)(ec, std::move(page));
                });
            };
            if (h.async_history(q, complete))
                return;
            boost::system::error_code ec;
            auto page = h.read_history(q, ec);
            complete(ec, std::move(page));
        },
        token, std::move(q));
}

// Waits (at most `limit`) until the hub holds the cluster's state of `channel`: a REST read
// on a node none of whose clients use the channel (see engine::prepare). The node stays
// subscribed to the channel afterwards, so later reads are current.
inline boost::asio::awaitable<void> async_prepare(hub& h, const std::string& channel,
                                                  std::chrono::milliseconds limit) {
    namespace net = boost::asio;
    auto ex = co_await net::this_coro::executor;
    auto loaded = std::make_shared<net::steady_timer>(ex, limit);
    // Called from the engine's thread: the timer is touched on its own executor only.
    bool const ready = h.prepare(
        channel, [loaded] { net::post(loaded->get_executor(), [loaded] { loaded->cancel(); }); });
    if (!ready)
        co_await loaded->async_wait(net::as_tuple(net::use_awaitable));
}

} // namespace rtpush::detail

#endif
