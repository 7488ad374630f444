// Permissions as rabbitmqctl set_permissions gives them: unanchored regular expressions per
// user and vhost; users without entries are unrestricted.
#include "messaging/permissions.h"

#include <gtest/gtest.h>

namespace depot::messaging {
namespace {

TEST(PermissionsTest, EntriesParseAndBadOnesAreExplained) {
  std::vector<PermissionEntry> entries;
  EXPECT_FALSE(parse_permissions("alice / .* .* .*; bob orders ^bob- ^$ .*", entries));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].user, "bob");
  EXPECT_EQ(entries[1].vhost, "orders");
  EXPECT_EQ(entries[1].configure, "^bob-");
  EXPECT_EQ(entries[1].write, "^$");
  auto wrong = parse_permissions("alice / .*", entries);
  ASSERT_TRUE(wrong);
  EXPECT_NE(wrong->find("is not USER VHOST CONFIGURE WRITE READ"), std::string::npos);
  wrong = parse_permissions("alice / ( .* .*", entries);
  ASSERT_TRUE(wrong);
  EXPECT_NE(wrong->find("is not a regular expression"), std::string::npos);
}

TEST(PermissionsTest, ChecksMatchAnywhereUnlessAnchored) {
  std::vector<PermissionEntry> entries;
  ASSERT_FALSE(parse_permissions("bob / ^bob- ^$ log", entries));
  Permissions permissions(entries);
  EXPECT_TRUE(permissions.may_open("bob", "/"));
  EXPECT_FALSE(permissions.may_open("bob", "other"));
  EXPECT_TRUE(permissions.may_open("carol", "other"));  // no entries: unrestricted
  EXPECT_TRUE(permissions.check("bob", "/", Access::configure, Resource::queue, "bob-1"));
  EXPECT_FALSE(permissions.check("bob", "/", Access::configure, Resource::queue, "x-bob-1"));
  EXPECT_TRUE(permissions.check("bob", "/", Access::read, Resource::queue, "the-logs"));
  auto refused = permissions.check("bob", "/", Access::write, Resource::exchange, "");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::access_refused);
  EXPECT_EQ(refused.error().message,
            "access to exchange 'amq.default' in vhost '/' refused for user 'bob'");
  EXPECT_TRUE(permissions.check("carol", "/", Access::write, Resource::exchange, "anything"));
}

}  // namespace
}  // namespace depot::messaging
