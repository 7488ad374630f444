#include "protocol/faktory/auth.h"

#include <cstdint>
#include <memory>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace depot::faktory {
namespace {

constexpr int kMinIterations = 4000;
constexpr int kIterationSpread = 4096;  // Faktory: rand.Intn(4096) + 4000

uint64_t random_u64() {
  uint64_t value = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
    // OpenSSL's generator failing is near impossible; the OS's is still a fine fallback.
    std::random_device device;
    value = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  return value;
}

}  // namespace

Challenge random_challenge() {
  Challenge challenge;
  challenge.iterations = kMinIterations + static_cast<int>(random_u64() % kIterationSpread);
  challenge.salt = fmt::format("{:x}", random_u64() >> 1);  // Go's Int63: 63 random bits
  return challenge;
}

std::string greeting(const std::optional<Challenge>& challenge) {
  if (!challenge) return "+HI {\"v\":2}\r\n";
  // The salt is our own hex, so it needs no JSON escaping.
  return fmt::format("+HI {{\"v\":2,\"i\":{},\"s\":\"{}\"}}\r\n", challenge->iterations,
                     challenge->salt);
}

std::string faktory_password_hash(std::string_view password, std::string_view salt,
                                  int iterations) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  const EVP_MD* sha256 = EVP_sha256();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  auto check = [](int ok) {
    if (ok != 1) throw std::runtime_error("OpenSSL SHA-256 failed");
  };
  if (!ctx) throw std::runtime_error("OpenSSL: out of memory");
  check(EVP_DigestInit_ex(ctx.get(), sha256, nullptr));
  check(EVP_DigestUpdate(ctx.get(), password.data(), password.size()));
  check(EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()));
  check(EVP_DigestFinal_ex(ctx.get(), digest, &size));
  for (int i = 1; i < iterations; ++i) {
    check(EVP_DigestInit_ex(ctx.get(), sha256, nullptr));
    check(EVP_DigestUpdate(ctx.get(), digest, size));
    check(EVP_DigestFinal_ex(ctx.get(), digest, &size));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool password_matches(std::string_view pwdhash, std::string_view password,
                      const Challenge& challenge, int64_t client_version) {
  const int iterations = client_version < 2 ? 1 : challenge.iterations;
  return constant_time_equal(pwdhash, faktory_password_hash(password, challenge.salt, iterations));
}

}  // namespace depot::faktory
