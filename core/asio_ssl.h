// Asio's TLS layer and Beast's ssl_stream, for the files that speak TLS.
// Kept apart from core/asio.h because OpenSSL's headers are heavy.
#pragma once

#include "core/asio.h"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace hubcache {
namespace ssl = boost::asio::ssl;
}  // namespace hubcache
