//
// rtpush: TLS settings and contexts for wss:// and https://.
//
#ifndef RTPUSH_TLS_HPP
#define RTPUSH_TLS_HPP

#include <boost/asio/ssl/context.hpp>

#include <string>

namespace rtpush {

/// How a client checks the server it connects to over wss:// or https://.
struct tls_client_options {
    std::string ca_file; ///< PEM file of trusted CAs; empty: the system's CAs
    bool verify = true;  ///< false: accept any certificate (testing only; like wscat -n)
    /// A client certificate (PEM chain) and its key, for servers that ask for one (Redis with
    /// `tls-auth-clients yes`, its default). Both or neither.
    std::string cert_file;
    std::string key_file;
};

/// A server context that serves the PEM certificate chain `cert_file` with the private key
/// `key_file` (TLS 1.2 and 1.3). Throws std::invalid_argument naming the file and OpenSSL's
/// reason when either cannot be read or they do not match.
inline boost::asio::ssl::context make_server_tls_context(const std::string& cert_file,
                                                         const std::string& key_file);

/// A client context that verifies peers as `opt` says (or not) and presents opt's client
/// certificate if it has one. Throws std::invalid_argument when a file cannot be read or
/// the key does not match the certificate.
inline boost::asio::ssl::context make_client_tls_context(const tls_client_options& opt);

namespace detail {
/// A TLS failure as a sentence (OpenSSL's reason, or what a truncation means).
inline std::string tls_error_text(const boost::system::error_code& ec);
} // namespace detail

/// Sets SNI (not for IP literals) and, when `verify`, RFC 6125 host name checking on one
/// connection (an asio ssl::stream, before its handshake).
template <class TlsStream>
void prepare_client_tls(TlsStream& stream, const std::string& host, bool verify);

} // namespace rtpush

#include <rtpush/impl/tls.hpp>

#endif
