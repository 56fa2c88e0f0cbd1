// ODR proof, part one: rtpush.hpp in two translation units links without duplicate symbols.
#include <rtpush.hpp>

std::string odr_b();

int main() {
    rtpush::topic const t{"kpi", {"acme", "support", ""}};
    return t.key() == odr_b() ? 0 : 1;
}
