#include "standin/background_calls.h"

#include <grpcpp/client_context.h>

namespace s2z::standin {

std::shared_ptr<grpc::ClientContext> BackgroundCalls::newContext() {
  std::lock_guard lock(mu_);
  if (stopping_) return nullptr;
  auto ctx = std::make_shared<grpc::ClientContext>();
  std::erase_if(contexts_, [](const auto& w) { return w.expired(); });
  contexts_.push_back(ctx);
  return ctx;
}

bool BackgroundCalls::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_.load(); });
}

void BackgroundCalls::spawn(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  threads_.emplace_back(std::move(fn));
}

void BackgroundCalls::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& w : contexts_) {
      if (auto ctx = w.lock()) ctx->TryCancel();
    }
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace s2z::standin
