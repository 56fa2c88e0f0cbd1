// ODR proof, part two.
#include <rtpush.hpp>

std::string odr_b() {
    boost::system::error_code ec;
    return rtpush::parse_topic("kpi:org:acme:dept:support", ec).key();
}
