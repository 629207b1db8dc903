// The fixture shared by the upstream → store tests: an in-process fake Hub,
// a fresh store in a temporary directory, a Hub client with fast retries, one
// client io_context (pooled sockets are bound to it) and a blocking pool.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "core/asio.h"
#include "proxy/hub_client.h"
#include "store/blob_store.h"
#include "tests/fakehub/fake_hub.h"

namespace hubcache::proxy {

class UpstreamStoreTest : public ::testing::Test {
 protected:
  // `max_retries` and `retry_cap` tune the client's retries per fixture.
  void StartUpstreamAndStore(std::uint32_t max_retries, std::chrono::milliseconds retry_cap) {
    hub_ = fakehub::FakeHub::Start({});
    // One path component, also for parameterized tests ("Name/Param").
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    root_ = std::filesystem::temp_directory_path() /
            ("hubcache-upstream-store-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(root_);
    store::Options options;
    options.cache_dir = root_.string();
    options.min_free_percent = 0;
    auto store = store::BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    UpstreamOptions upstream;
    upstream.url = hub_->url();
    upstream.max_retries = max_retries;
    auto client = HubClient::Create(upstream, {},
                                    RetryPolicy{std::chrono::milliseconds(5), retry_cap});
    ASSERT_TRUE(client) << client.error().message();
    client_ = std::move(*client);
    commit_ = hub_->Commit("model", "org/model", "main");
  }
  void TearDown() override {
    client_.reset();
    pool_.join();
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  std::unique_ptr<fakehub::FakeHub> hub_;
  std::filesystem::path root_;
  std::unique_ptr<store::BlobStore> store_;
  net::io_context ioc_;
  net::thread_pool pool_{2};
  std::unique_ptr<HubClient> client_;
  std::string commit_;
};

}  // namespace hubcache::proxy
