#define BOOST_TEST_MODULE rtpush_integration
#include <boost/test/unit_test.hpp>
