#define BOOST_TEST_MODULE rtpush_unit
#include <boost/test/unit_test.hpp>
