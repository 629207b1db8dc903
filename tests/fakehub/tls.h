// ThrowawayCa: a certificate authority made up at startup for one FakeHub,
// so tests exercise the real TLS client path (verify_peer and host name
// checks) without any fixed key material in the tree.
//
// Make() generates, in process with the OpenSSL 3 API, an EC P-256 CA
// certificate and a leaf certificate for 127.0.0.1, ::1 and localhost
// (subjectAltName IP and DNS, serverAuth), both valid from an hour ago for
// 30 days, and writes the CA's PEM to ca.pem in a fresh private temporary
// directory, which the destructor removes.
//
// Thread safety: immutable after Make().
#pragma once

#include <memory>
#include <string>

namespace hubcache::fakehub {

class ThrowawayCa {
 public:
  // Throws std::runtime_error if generation or the temp files fail.
  static std::unique_ptr<ThrowawayCa> Make();
  ~ThrowawayCa();
  ThrowawayCa(const ThrowawayCa&) = delete;
  ThrowawayCa& operator=(const ThrowawayCa&) = delete;

  // Path of the CA certificate (PEM), for clients' verify paths.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& ca_pem() const { return ca_pem_; }
  // The server's chain (leaf then CA) and private key, PEM.
  const std::string& chain_pem() const { return chain_pem_; }
  const std::string& key_pem() const { return key_pem_; }

 private:
  ThrowawayCa() = default;
  std::string dir_;
  std::string ca_file_;
  std::string ca_pem_;
  std::string chain_pem_;
  std::string key_pem_;
};

}  // namespace hubcache::fakehub
