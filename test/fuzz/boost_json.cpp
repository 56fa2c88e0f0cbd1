// Boost.JSON's sources, compiled with the fuzzers' instrumentation (see CMakeLists.txt).
#include <boost/json/src.hpp>
