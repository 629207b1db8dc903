// CdnService: the fake Hub's CDN listener, standing in for the Xet bridge /
// CloudFront hosts LFS downloads are redirected to (HUB_PROTOCOL.md §2.3,
// §6.3).
//
// It serves GET and HEAD of /xet-bridge-us/<id>/<sha256>?<signed query>:
// 200 or exact 206 (416 with `bytes */N` past the end), ETag "<sha256>",
// Accept-Ranges, Content-Disposition, Cache-Control and
// `X-Cache: Hit from cloudfront`. A missing, edited or expired signature is
// 403 with an XML body. It never looks at Authorization.
//
// Thread safety: Handle() is reentrant; the Model and Signer must outlive
// the service.
#pragma once

#include "tests/fakehub/listener.h"
#include "tests/fakehub/model.h"
#include "tests/fakehub/signer.h"

namespace hubcache::fakehub {

class CdnService final : public Service {
 public:
  CdnService(const Model& model, const Signer& signer) : model_(model), signer_(signer) {}
  Reply Handle(const Request& request) override;

 private:
  const Model& model_;
  const Signer& signer_;
};

}  // namespace hubcache::fakehub
