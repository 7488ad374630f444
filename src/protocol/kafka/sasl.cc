#include "protocol/kafka/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace depot::kafka {
namespace {

constexpr std::string_view kPlain = "PLAIN";
constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
constexpr int kScramIterations = 4096;  // Kafka's minimum for SCRAM-SHA-256

using Step = SaslExchange::Step;

Step failure(std::string why) {
  return {Step::Outcome::failure, {}, std::move(why)};
}

std::string_view text(ByteSpan bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view encoded) {
  if (encoded.size() % 4 != 0) return std::nullopt;
  std::string out(3 * encoded.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()),
                                static_cast<int>(encoded.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes.
  size_t padding = 0;
  for (size_t i = encoded.size(); i > 0 && encoded[i - 1] == '='; --i)
    ++padding;
  out.resize(static_cast<size_t>(n) - std::min<size_t>(padding, static_cast<size_t>(n)));
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return {};
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return {reinterpret_cast<const char*>(out), size};
}

std::string sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return {reinterpret_cast<const char*>(out), sizeof out};
}

// Equal digests, compared in constant time: neither the position of a difference nor the
// secret's length shows in the time taken.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const std::string da = sha256(a);
  const std::string db = sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

// "a=1,b=2" -> the value of `key`, or nullopt.
std::optional<std::string_view> attribute(std::string_view message, char key) {
  while (!message.empty()) {
    const size_t comma = message.find(',');
    const std::string_view part = message.substr(0, comma);
    if (part.size() >= 2 && part[0] == key && part[1] == '=') return part.substr(2);
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

// SCRAM's saslname: ',' and '=' arrive as "=2C" and "=3D"; any other '=' is malformed.
std::optional<std::string> decode_saslname(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '=') {
      out += name[i];
      continue;
    }
    const std::string_view escape = name.substr(i, 3);
    if (escape == "=2C") {
      out += ',';
    } else if (escape == "=3D") {
      out += '=';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& SaslExchange::mechanisms() {
  static const std::vector<std::string> offered{std::string(kPlain), std::string(kScramSha256)};
  return offered;
}

bool SaslExchange::supported(std::string_view mechanism) {
  return mechanism == kPlain || mechanism == kScramSha256;
}

SaslExchange::SaslExchange(std::string mechanism, const std::map<std::string, std::string>& users)
    : mechanism_(std::move(mechanism)), users_(users) {}

Step SaslExchange::step(ByteSpan token) {
  const int round = round_++;
  if (mechanism_ == kPlain && round == 0) return plain(text(token));
  if (mechanism_ == kScramSha256 && round == 0) return scram_first(text(token));
  if (mechanism_ == kScramSha256 && round == 1) return scram_final(text(token));
  return failure("unexpected SASL token: the exchange is over");
}

Step SaslExchange::plain(std::string_view token) {
  // authzid NUL authcid NUL password
  const size_t first = token.find('\0');
  const size_t second = first == std::string_view::npos ? first : token.find('\0', first + 1);
  if (second == std::string_view::npos) return failure("malformed PLAIN token");
  const std::string_view authzid = token.substr(0, first);
  const std::string user(token.substr(first + 1, second - first - 1));
  const std::string_view password = token.substr(second + 1);
  if (!authzid.empty() && authzid != user) {
    return failure("authorization id and user name differ");
  }
  auto it = users_.find(user);
  if (it == users_.end() || !constant_time_equal(it->second, password)) {
    return failure("Authentication failed: Invalid username or password");
  }
  user_ = user;
  return {Step::Outcome::success, {}, {}};
}

Step SaslExchange::scram_first(std::string_view token) {
  // gs2-header "n,," (no channel binding; "y,," means the client could but thinks we cannot).
  if (!token.starts_with("n,,") && !token.starts_with("y,,")) {
    return failure("SCRAM: channel binding and authorization ids are not supported");
  }
  gs2_header_ = std::string(token.substr(0, 3));
  client_first_bare_ = std::string(token.substr(3));
  auto name = attribute(client_first_bare_, 'n');
  auto client_nonce = attribute(client_first_bare_, 'r');
  if (!name || !client_nonce || client_nonce->empty())
    return failure("SCRAM: malformed first message");
  auto user = decode_saslname(*name);
  if (!user) return failure("SCRAM: malformed user name");
  // An unknown user goes through the same steps with a password nobody has, and fails only at
  // the proof: the time taken does not tell which users exist.
  auto it = users_.find(*user);
  const std::string password = it != users_.end() ? it->second : base64(random_bytes(24));
  user_ = *user;
  const std::string salt = random_bytes(16);
  const std::string server_nonce = base64(random_bytes(18));
  if (salt.empty() || server_nonce.empty()) return failure("SCRAM: no random bytes");
  salted_password_.assign(SHA256_DIGEST_LENGTH, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), kScramIterations, EVP_sha256(),
                    SHA256_DIGEST_LENGTH,
                    reinterpret_cast<unsigned char*>(salted_password_.data()));
  nonce_ = std::string(*client_nonce) + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64(salt) + ",i=" + std::to_string(kScramIterations);
  return {Step::Outcome::challenge, to_bytes(server_first_), {}};
}

Step SaslExchange::scram_final(std::string_view token) {
  const size_t proof_at = token.rfind(",p=");
  if (proof_at == std::string_view::npos) return failure("SCRAM: malformed final message");
  const std::string_view without_proof = token.substr(0, proof_at);
  auto binding = attribute(without_proof, 'c');
  auto nonce = attribute(without_proof, 'r');
  auto proof = unbase64(token.substr(proof_at + 3));
  if (!binding || !nonce || !proof) return failure("SCRAM: malformed final message");
  // Kafka checks only that the nonce ends with the one it sent: librdkafka 2.0 repeats its own
  // part in front of it, and Kafka's clients must keep working here too.
  if (!nonce->ends_with(nonce_)) return failure("SCRAM: the nonce does not match");
  auto gs2 = unbase64(*binding);
  if (!gs2 || *gs2 != gs2_header_) return failure("SCRAM: bad channel binding");
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const std::string client_key = hmac(salted_password_, "Client Key");
  const std::string stored_key = sha256(client_key);
  const std::string client_signature = hmac(stored_key, auth_message);
  if (proof->size() != client_signature.size()) {
    return failure("Authentication failed: Invalid user credentials");
  }
  std::string recovered_key(proof->size(), '\0');
  for (size_t i = 0; i < proof->size(); ++i)
    recovered_key[i] = static_cast<char>((*proof)[i] ^ client_signature[i]);
  if (!constant_time_equal(sha256(recovered_key), stored_key)) {
    return failure("Authentication failed: Invalid user credentials");
  }
  const std::string server_key = hmac(salted_password_, "Server Key");
  const std::string server_final = "v=" + base64(hmac(server_key, auth_message));
  return {Step::Outcome::success, to_bytes(server_final), {}};
}

}  // namespace depot::kafka
