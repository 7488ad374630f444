// Faktory's password handshake. Expected hashes were computed once with the sha256sum CLI:
//   h=$(printf 'passwordsalt' | sha256sum | cut -c1-64)                  # 1 iteration
//   h=$(printf '%s' "$h" | xxd -r -p | sha256sum | cut -c1-64)           # each further one
// and the 4000-iteration vector cross-checked with Python's hashlib.
#include "protocol/faktory/auth.h"

#include <set>

#include <gtest/gtest.h>

namespace depot::faktory {
namespace {

TEST(FaktoryAuth, HashMatchesChainedSha256sum) {
  EXPECT_EQ(faktory_password_hash("password", "salt", 1),
            "7a37b85c8918eac19a9089c0fa5a2ab4dce3f90528dcdeec108b23ddf3607b99");
  EXPECT_EQ(faktory_password_hash("password", "salt", 2),
            "a6b9d96cc74d52749372886896349c07e2137fe8788b496d76f6d56e49a9bd52");
  EXPECT_EQ(faktory_password_hash("password", "salt", 3),
            "cc19a87959d70ba1d9d2979b5fc2323e0d62a40fb2545492e9ec4d57ce79956d");
  EXPECT_EQ(faktory_password_hash("password", "salt", 5),
            "3a0f8399d48dfd3db8d83e71fa34a017d6565887385ee2938fa89bba2c6b51bb");
  EXPECT_EQ(faktory_password_hash("ohmysecret", "1a2b3c", 4000),
            "391e26cc74dce80d4f8253627766e80140f171cb8f691b2025caf55691146362");
  // Raw bytes, no encoding games: printf 'p\xc3\xa4ss' | sha256sum
  EXPECT_EQ(faktory_password_hash("p\xc3\xa4ss", "", 1),
            "73c2e2fd2aec66e50135a01b2a007fcc23e4d35010637f98541e453a8665d25d");
  // Faktory's loop runs at least once.
  EXPECT_EQ(faktory_password_hash("password", "salt", 0),
            faktory_password_hash("password", "salt", 1));
  EXPECT_EQ(faktory_password_hash("pass", "wordsalt", 1),
            faktory_password_hash("password", "salt", 1));
}

TEST(FaktoryAuth, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("abc", "ABC"));
}

TEST(FaktoryAuth, PasswordMatches) {
  Challenge challenge{3, "salt"};
  const char* three = "cc19a87959d70ba1d9d2979b5fc2323e0d62a40fb2545492e9ec4d57ce79956d";
  const char* one = "7a37b85c8918eac19a9089c0fa5a2ab4dce3f90528dcdeec108b23ddf3607b99";
  EXPECT_TRUE(password_matches(three, "password", challenge, 2));
  EXPECT_FALSE(password_matches(three, "passw0rd", challenge, 2));
  EXPECT_FALSE(password_matches("", "password", challenge, 2));
  // Protocol version 1 clients hash once.
  EXPECT_TRUE(password_matches(one, "password", challenge, 1));
  EXPECT_FALSE(password_matches(three, "password", challenge, 1));
}

TEST(FaktoryAuth, RandomChallenges) {
  std::set<std::string> salts;
  for (int i = 0; i < 200; ++i) {
    Challenge c = random_challenge();
    EXPECT_GE(c.iterations, 4000);
    EXPECT_LT(c.iterations, 8096);
    ASSERT_FALSE(c.salt.empty());
    EXPECT_LE(c.salt.size(), 16u);
    EXPECT_EQ(c.salt.find_first_not_of("0123456789abcdef"), std::string::npos) << c.salt;
    salts.insert(c.salt);
  }
  EXPECT_GT(salts.size(), 195u);
}

TEST(FaktoryAuth, Greeting) {
  EXPECT_EQ(greeting(std::nullopt), "+HI {\"v\":2}\r\n");
  EXPECT_EQ(greeting(Challenge{4321, "5f3a"}), "+HI {\"v\":2,\"i\":4321,\"s\":\"5f3a\"}\r\n");
}

}  // namespace
}  // namespace depot::faktory
