#include "tests/fakehub/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace hubcache::fakehub {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

[[noreturn]] void Fail(const std::string& what) {
  char buffer[256] = "";
  ERR_error_string_n(ERR_get_error(), buffer, sizeof(buffer));
  throw std::runtime_error("fakehub tls: " + what + ": " + buffer);
}

void Require(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

Pkey NewKey() {
  Pkey key(EVP_EC_gen("P-256"));
  Require(key != nullptr, "EC key generation");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Require(ext != nullptr, std::string("extension ") + OBJ_nid2sn(nid));
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  Require(ok, "X509_add_ext");
}

Cert NewCert(EVP_PKEY* key, const char* common_name) {
  Cert cert(X509_new());
  Require(cert != nullptr, "X509_new");
  Require(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  unsigned char serial[16];
  Require(RAND_bytes(serial, sizeof(serial)) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  Require(bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr,
          "serial number");
  BN_free(bn);
  Require(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  Require(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600) != nullptr, "notAfter");
  Require(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  Require(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("hubcache fakehub"), -1,
                                     -1, 0) == 1 &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         reinterpret_cast<const unsigned char*>(common_name), -1,
                                         -1, 0) == 1,
          "subject name");
  return cert;
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  Require(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  Require(bio != nullptr &&
              PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

std::unique_ptr<ThrowawayCa> ThrowawayCa::Make() {
  std::unique_ptr<ThrowawayCa> ca(new ThrowawayCa());

  const Pkey ca_key = NewKey();
  const Cert ca_cert = NewCert(ca_key.get(), "hubcache fakehub throwaway CA");
  Require(X509_set_issuer_name(ca_cert.get(), X509_get_subject_name(ca_cert.get())) == 1, "issuer");
  AddExtension(ca_cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(ca_cert.get(), ca_cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(ca_cert.get(), ca_cert.get(), NID_subject_key_identifier, "hash");
  Require(X509_sign(ca_cert.get(), ca_key.get(), EVP_sha256()) > 0, "signing the CA");

  const Pkey leaf_key = NewKey();
  const Cert leaf = NewCert(leaf_key.get(), "localhost");
  Require(X509_set_issuer_name(leaf.get(), X509_get_subject_name(ca_cert.get())) == 1, "issuer");
  AddExtension(leaf.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(leaf.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  AddExtension(leaf.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth");
  AddExtension(leaf.get(), ca_cert.get(), NID_subject_alt_name,
               "IP:127.0.0.1,IP:::1,DNS:localhost");
  AddExtension(leaf.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  Require(X509_sign(leaf.get(), ca_key.get(), EVP_sha256()) > 0, "signing the leaf");

  ca->ca_pem_ = CertPem(ca_cert.get());
  ca->chain_pem_ = CertPem(leaf.get()) + ca->ca_pem_;
  ca->key_pem_ = KeyPem(leaf_key.get());

  std::string tmpl = (std::filesystem::temp_directory_path() / "hubcache-fakehub-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("fakehub tls: cannot create a temporary directory under " +
                             std::filesystem::temp_directory_path().string());
  }
  ca->dir_ = tmpl;
  ca->ca_file_ = ca->dir_ + "/ca.pem";
  std::ofstream out(ca->ca_file_, std::ios::binary);
  out << ca->ca_pem_;
  out.close();
  if (!out) throw std::runtime_error("fakehub tls: cannot write " + ca->ca_file_);
  return ca;
}

ThrowawayCa::~ThrowawayCa() {
  if (dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace hubcache::fakehub
