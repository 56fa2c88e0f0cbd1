#include <rtpush/error.hpp>

#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <utility>

using E = rtpush::error;

BOOST_AUTO_TEST_SUITE(error)

BOOST_AUTO_TEST_CASE(category_name_and_identity) {
    BOOST_TEST(std::string(rtpush::rtpush_category().name()) == "rtpush");
    // the category is a singleton: two calls give the same object
    BOOST_TEST(&rtpush::rtpush_category() == &rtpush::rtpush_category());
    boost::system::error_code ec = E::invalid_message;
    BOOST_TEST(&ec.category() == &rtpush::rtpush_category());
    BOOST_TEST(ec.value() == static_cast<int>(E::invalid_message));
    BOOST_TEST(std::string(ec.category().name()) == "rtpush");
}

BOOST_AUTO_TEST_CASE(messages) {
    BOOST_TEST(make_error_code(E::auth_failed).message() == "authentication failed");
    BOOST_TEST(make_error_code(E::invalid_message).message() == "invalid message");
    BOOST_TEST(make_error_code(E::message_too_large).message() == "message exceeds the size limit");
    BOOST_TEST(make_error_code(E::queue_overflow).message() ==
               "outbound queue overflow (slow consumer)");
    BOOST_TEST(make_error_code(E::invalid_utf8).message() == "text frame is not valid UTF-8");
    BOOST_TEST(make_error_code(E::bad_url).message() == "malformed URL");
    BOOST_TEST(rtpush::rtpush_category().message(0) == "unknown rtpush error");
    BOOST_TEST(rtpush::rtpush_category().message(9999) == "unknown rtpush error");

    // every enumerator has its own, non-default message
    E const all[] = {E::auth_failed,
                     E::unauthorized,
                     E::invalid_message,
                     E::message_too_large,
                     E::rate_limit_exceeded,
                     E::subscription_failed,
                     E::room_not_found,
                     E::room_full,
                     E::connection_limit,
                     E::internal_error,
                     E::protocol_violation,
                     E::invalid_utf8,
                     E::handshake_failed,
                     E::queue_overflow,
                     E::closed,
                     E::timeout,
                     E::bad_url,
                     E::engine_unavailable,
                     E::redis_error,
                     E::store_failed,
                     E::store_corrupt};
    std::set<std::string> seen;
    for (auto e : all) {
        auto const m = make_error_code(e).message();
        BOOST_TEST(m != "unknown rtpush error");
        BOOST_TEST(seen.insert(m).second, "duplicate message: " << m);
    }
}

BOOST_AUTO_TEST_CASE(wire_codes_of_protocol_errors) {
    std::pair<E, std::string> const cases[] = {
        {E::auth_failed, "AUTH_FAILED"},
        {E::unauthorized, "UNAUTHORIZED"},
        {E::invalid_message, "INVALID_MESSAGE"},
        {E::message_too_large, "MESSAGE_TOO_LARGE"},
        {E::rate_limit_exceeded, "RATE_LIMIT_EXCEEDED"},
        {E::subscription_failed, "SUBSCRIPTION_FAILED"},
        {E::room_not_found, "ROOM_NOT_FOUND"},
        {E::room_full, "ROOM_FULL"},
        {E::connection_limit, "CONNECTION_LIMIT"},
        {E::internal_error, "INTERNAL_ERROR"},
    };
    for (auto const& [e, code] : cases)
        BOOST_TEST(std::string(rtpush::wire_code(e)) == code);
}

BOOST_AUTO_TEST_CASE(wire_codes_of_transport_errors) {
    BOOST_TEST(rtpush::wire_code(E::protocol_violation) == "INVALID_MESSAGE");
    BOOST_TEST(rtpush::wire_code(E::invalid_utf8) == "INVALID_MESSAGE");
    BOOST_TEST(rtpush::wire_code(E::queue_overflow) == "INTERNAL_ERROR");
    BOOST_TEST(rtpush::wire_code(E::timeout) == "INTERNAL_ERROR");
    BOOST_TEST(rtpush::wire_code(static_cast<E>(4242)) == "INTERNAL_ERROR");
}

BOOST_AUTO_TEST_CASE(close_codes) {
    BOOST_TEST(rtpush::close_code(E::protocol_violation) == 1002);
    BOOST_TEST(rtpush::close_code(E::invalid_utf8) == 1007);
    BOOST_TEST(rtpush::close_code(E::message_too_large) == 1009);
    BOOST_TEST(rtpush::close_code(E::queue_overflow) == 1008);
    BOOST_TEST(rtpush::close_code(E::unauthorized) == 1008);
    BOOST_TEST(rtpush::close_code(E::auth_failed) == 1008);
    BOOST_TEST(rtpush::close_code(E::rate_limit_exceeded) == 1008);
    BOOST_TEST(rtpush::close_code(E::internal_error) == 1011);
    BOOST_TEST(rtpush::close_code(E::invalid_message) == 1000);
    BOOST_TEST(rtpush::close_code(E::closed) == 1000);
    BOOST_TEST(rtpush::close_code(E::timeout) == 1000);
}

BOOST_AUTO_TEST_CASE(error_code_comparison) {
    boost::system::error_code ec = E::room_full;
    BOOST_TEST(static_cast<bool>(ec));
    BOOST_TEST((ec == E::room_full));
    BOOST_TEST((ec != E::room_not_found));
    BOOST_TEST((ec == rtpush::make_error_code(E::room_full)));

    // same numeric value, different category: not equal
    boost::system::error_code const generic(static_cast<int>(E::room_full),
                                            boost::system::generic_category());
    BOOST_TEST((ec != generic));

    // a default error_code is not any rtpush error
    boost::system::error_code const none;
    BOOST_TEST(!none);
    BOOST_TEST((none != E::auth_failed));

    // assignment from the enum switches category
    ec = E::timeout;
    BOOST_TEST((ec == E::timeout));
    BOOST_TEST(ec.value() == 105);
}

BOOST_AUTO_TEST_SUITE_END()
