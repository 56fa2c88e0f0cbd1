#ifndef RTPUSH_IMPL_TLS_HPP
#define RTPUSH_IMPL_TLS_HPP

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_mode.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace rtpush {
namespace detail {

// OpenSSL's reason for a failure ("no such file", "certificate verify failed", ...).
inline std::string tls_error_text(const boost::system::error_code& ec) {
    std::string r = ec.message();
    if (ec == boost::asio::ssl::error::stream_truncated)
        r = "the peer closed the connection without a TLS close_notify";
    return r;
}

// Loads a certificate chain and its private key into `ctx`, with errors that name the file.
inline void use_certificate(boost::asio::ssl::context& ctx, const std::string& cert_file,
                            const std::string& key_file) {
    try {
        ctx.use_certificate_chain_file(cert_file);
    } catch (boost::system::system_error const& e) {
        throw std::invalid_argument("cannot use TLS certificate " + cert_file + ": " +
                                    tls_error_text(e.code()));
    }
    try {
        ctx.use_private_key_file(key_file, boost::asio::ssl::context::pem);
    } catch (boost::system::system_error const& e) {
        throw std::invalid_argument("cannot use TLS key " + key_file + ": " +
                                    tls_error_text(e.code()));
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
        throw std::invalid_argument("TLS key " + key_file + " does not match certificate " +
                                    cert_file);
}

} // namespace detail

inline boost::asio::ssl::context make_server_tls_context(const std::string& cert_file,
                                                         const std::string& key_file) {
    namespace ssl = boost::asio::ssl;
    ssl::context ctx(ssl::context::tls_server);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                    ssl::context::single_dh_use);
    if (cert_file.empty() || key_file.empty())
        throw std::invalid_argument("TLS needs both a certificate file and a key file");
    detail::use_certificate(ctx, cert_file, key_file);
    // Less memory per idle connection: OpenSSL frees its record buffers between records.
    SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

inline boost::asio::ssl::context make_client_tls_context(const tls_client_options& opt) {
    namespace ssl = boost::asio::ssl;
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (opt.cert_file.empty() != opt.key_file.empty())
        throw std::invalid_argument("a TLS client certificate needs both a certificate file "
                                    "and a key file");
    if (!opt.cert_file.empty())
        detail::use_certificate(ctx, opt.cert_file, opt.key_file);
    if (!opt.verify) {
        ctx.set_verify_mode(ssl::verify_none);
        return ctx;
    }
    ctx.set_verify_mode(ssl::verify_peer);
    try {
        if (opt.ca_file.empty())
            ctx.set_default_verify_paths();
        else
            ctx.load_verify_file(opt.ca_file);
    } catch (boost::system::system_error const& e) {
        throw std::invalid_argument("cannot load CA file " + opt.ca_file + ": " +
                                    detail::tls_error_text(e.code()));
    }
    return ctx;
}

template <class TlsStream>
void prepare_client_tls(TlsStream& stream, const std::string& host, bool verify) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    bool const ip_literal = !ec;
    // SNI carries names only (RFC 6066 section 3).
    if (!ip_literal)
        SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
    if (verify)
        stream.set_verify_callback(boost::asio::ssl::host_name_verification(host));
}

} // namespace rtpush

#endif
