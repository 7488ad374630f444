// The AMQP 0-9-1 wire layer against hand-checked bytes: frames, methods (bit packing, reserved
// fields), field tables and content headers, and the errors malformed input gets.
#include <gtest/gtest.h>

#include "protocol/amqp/frame.h"
#include "protocol/amqp/method.h"
#include "protocol/amqp/properties.h"

namespace depot::amqp {
namespace {

Bytes bytes(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values)
    out.push_back(static_cast<std::byte>(v));
  return out;
}
// Bytes written as a mix of numbers and text: {0x05, "PLAIN"}.
struct Piece {
  Piece(int v) : data(1, static_cast<char>(v)) {}  // NOLINT(google-explicit-constructor)
  Piece(const char* s) : data(s) {}                // NOLINT(google-explicit-constructor)
  std::string data;
};
Bytes wire(std::initializer_list<Piece> pieces) {
  Bytes out;
  for (const Piece& p : pieces) {
    for (char c : p.data)
      out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

TEST(AmqpFrame, ScansWholeFramesAndWaitsForPartialOnes) {
  Bytes heartbeat = bytes({8, 0, 0, 0, 0, 0, 0, 0xCE});
  auto scan = scan_frame(heartbeat, 4096);
  ASSERT_EQ(scan.status, FrameScan::Status::frame);
  EXPECT_EQ(scan.frame.type, FrameType::heartbeat);
  EXPECT_EQ(scan.size, 8U);
  for (size_t n = 0; n < heartbeat.size(); ++n) {
    EXPECT_EQ(scan_frame(ByteSpan(heartbeat).first(n), 4096).status, FrameScan::Status::need_more);
  }
  Bytes method = bytes({1, 0, 3, 0, 0, 0, 4, 0, 20, 0, 41, 0xCE, 0xFF});  // channel.close-ok on 3
  scan = scan_frame(method, 4096);
  ASSERT_EQ(scan.status, FrameScan::Status::frame);
  EXPECT_EQ(scan.frame.channel, 3);
  EXPECT_EQ(scan.size, 12U);
  EXPECT_EQ(scan.frame.payload.size(), 4U);

  Bytes built;
  append_frame(built, FrameType::method, 3, scan.frame.payload);
  EXPECT_EQ(built, Bytes(method.begin(), method.end() - 1));
}

TEST(AmqpFrame, RejectsBadFramesWithFrameError) {
  Bytes bad_end = bytes({8, 0, 0, 0, 0, 0, 0, 0xCD});
  auto scan = scan_frame(bad_end, 4096);
  ASSERT_EQ(scan.status, FrameScan::Status::error);
  EXPECT_EQ(scan.error.code, ReplyCode::frame_error);
  EXPECT_NE(scan.error.text.find("frame-end"), std::string::npos) << scan.error.text;

  Bytes too_big = bytes({3, 0, 1, 0, 0, 0x10, 0, 0});  // 4096-byte body: 4104 > 4096
  scan = scan_frame(too_big, 4096);
  ASSERT_EQ(scan.status, FrameScan::Status::error);
  EXPECT_EQ(scan.error.code, ReplyCode::frame_error);
  EXPECT_EQ(scan_frame(too_big, 0).status, FrameScan::Status::need_more);  // 0: no bound

  Bytes header_again = bytes({'A', 'M', 'Q', 'P', 0, 0, 9, 1});
  scan = scan_frame(header_again, 4096);
  ASSERT_EQ(scan.status, FrameScan::Status::error);
  EXPECT_EQ(scan.error.text, "FRAME_ERROR - unknown frame type 65");
}

TEST(AmqpMethod, DecodesStartOkAsPikaSendsIt) {
  Bytes payload = wire({0, 10,      0, 11,  // connection.start-ok
                        0, 0,       0, 13, 7, "product", 'S', 0,       0, 0, 0,  // {product: ""}
                        5, "PLAIN",                                              // mechanism
                        0, 0,       0, 12, 0, "guest",   0,   "guest",           // response
                        5, "en_US"});
  auto decoded = decode_method(payload);
  ASSERT_TRUE(decoded) << decoded.error().text;
  auto* start_ok = std::get_if<ConnectionStartOk>(&decoded.value());
  ASSERT_NE(start_ok, nullptr);
  EXPECT_EQ(start_ok->mechanism, "PLAIN");
  EXPECT_EQ(start_ok->response, std::string("\0guest\0guest", 12));
  EXPECT_EQ(start_ok->locale, "en_US");
  ASSERT_EQ(start_ok->client_properties.size(), 1U);
  EXPECT_EQ(start_ok->client_properties[0].name, "product");
  Bytes again;
  encode_method(*start_ok, again);
  EXPECT_EQ(again, payload);
}

TEST(AmqpMethod, PacksConsecutiveBitsLowestFirst) {
  // exchange.declare "logs" topic, durable + internal + nowait: bits 0b11010.
  Bytes payload = wire({0, 40, 0, 10, 0, 0, 4, "logs", 5, "topic", 0x1A, 0, 0, 0, 0});
  auto decoded = decode_method(payload);
  ASSERT_TRUE(decoded) << decoded.error().text;
  const auto& declare = std::get<ExchangeDeclare>(decoded.value());
  EXPECT_EQ(declare.exchange, "logs");
  EXPECT_EQ(declare.type, "topic");
  EXPECT_FALSE(declare.passive);
  EXPECT_TRUE(declare.durable);
  EXPECT_FALSE(declare.auto_delete);
  EXPECT_TRUE(declare.internal);
  EXPECT_TRUE(declare.nowait);
  Bytes again;
  encode_method(declare, again);
  EXPECT_EQ(again, payload);

  // basic.deliver: a bit between a longlong and shortstrs takes an octet of its own.
  Bytes deliver;
  encode_method(BasicDeliver{{}, "c1", 5, true, "ex", "rk"}, deliver);
  EXPECT_EQ(deliver, wire({0, 60, 0, 60, 2, "c1", 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, "ex", 2, "rk"}));
  // basic.nack: two bits in one octet.
  Bytes nack;
  encode_method(BasicNack{{}, 7, false, true}, nack);
  EXPECT_EQ(nack, wire({0, 60, 0, 120, 0, 0, 0, 0, 0, 0, 0, 7, 2}));
}

TEST(AmqpMethod, EveryMethodRoundTrips) {
  auto check = [](const Method& m) {
    Bytes encoded;
    encode_method(m, encoded);
    auto decoded = decode_method(encoded);
    ASSERT_TRUE(decoded) << decoded.error().text;
    EXPECT_EQ(decoded.value().index(), m.index());
    Bytes again;
    encode_method(decoded.value(), again);
    EXPECT_EQ(again, encoded) << method_name(load_be<uint16_t>(encoded.data()),
                                             load_be<uint16_t>(encoded.data() + 2));
  };
  [&]<size_t... I>(std::index_sequence<I...>) {
    (check(Method(std::in_place_index<I>)), ...);
  }
  (std::make_index_sequence<std::variant_size_v<Method>>());
  check(QueueDeclareOk{{}, "amq.gen-x", 3, 1});
  check(BasicGetOk{{}, 9, true, "ex", "key", 41});
  check(ConnectionClose{{}, 404, "NOT_FOUND - no queue 'q'", 50, 10});
}

TEST(AmqpMethod, MalformedArgumentsAreSyntaxErrorsNamingTheMethod) {
  Bytes truncated = wire({0, 50, 0, 10, 0, 0, 5, "ab"});  // queue.declare, name cut short
  auto decoded = decode_method(truncated);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::syntax_error);
  EXPECT_EQ(decoded.error().class_id, 50);
  EXPECT_EQ(decoded.error().method_id, 10);
  EXPECT_NE(decoded.error().text.find("queue.declare"), std::string::npos);

  Bytes trailing = wire({0, 90, 0, 10, 1});  // tx.select has no arguments
  decoded = decode_method(trailing);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::syntax_error);

  Bytes unknown = wire({0, 60, 0, 99});
  decoded = decode_method(unknown);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::not_implemented);
  EXPECT_EQ(decoded.error().text, "NOT_IMPLEMENTED - unknown method 60/99");

  Bytes bad_table = wire({0, 50, 0, 20, 0, 0,   1,  "q", 1, "e", 1, "k", 0,  // queue.bind ...
                          0, 0,  0, 3,  1, "a", 'Z'});                       // ... tag 'Z'
  decoded = decode_method(bad_table);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::syntax_error);
}

TEST(AmqpFieldTable, ReadsEveryTypeRabbitMqWritesAndWritesItBack) {
  FieldTable table = {
      {"bool", {true}},
      {"i8", {int8_t{-2}}},
      {"u8", {uint8_t{200}}},
      {"i16", {int16_t{-300}}},
      {"u16", {uint16_t{60000}}},
      {"i32", {int32_t{-70000}}},
      {"u32", {uint32_t{4000000000U}}},
      {"i64", {int64_t{-5000000000LL}}},
      {"f", {1.5F}},
      {"d", {2.25}},
      {"dec", {Decimal{2, 12345}}},
      {"s", {std::string("text")}},
      {"x", {ByteArray{std::string("\0\1", 2)}}},
      {"ts", {Timestamp{1700000000}}},
      {"nested", {FieldTable{{"k", {std::string("v")}}}}},
      {"array", {FieldArray{{int32_t{1}}, {std::string("two")}, {Void{}}}}},
      {"void", {Void{}}},
  };
  Bytes encoded;
  ByteWriter w(encoded);
  write_table(w, table);
  ByteReader in(encoded);
  FieldTable decoded;
  ASSERT_TRUE(read_table(in, decoded));
  EXPECT_TRUE(in.at_end());
  EXPECT_EQ(decoded, table);
  EXPECT_EQ(find_field(decoded, "u16")->as_integer(), 60000);
  EXPECT_EQ(*find_field(decoded, "s")->as_string(), "text");
  EXPECT_EQ(find_field(decoded, "missing"), nullptr);

  Bytes one = bytes({0, 0, 0, 4, 1, 'a', 't', 1});
  ByteReader small(one);
  FieldTable a;
  ASSERT_TRUE(read_table(small, a));
  EXPECT_EQ(a, (FieldTable{{"a", {true}}}));
  // 'L' (RabbitMQ: signed 64-bit) reads as 'l'.
  Bytes big_l = bytes({0, 0, 0, 11, 1, 'n', 'L', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  ByteReader l_in(big_l);
  FieldTable l_table;
  ASSERT_TRUE(read_table(l_in, l_table));
  EXPECT_EQ(l_table[0].value.as_integer(), -1);
}

TEST(AmqpFieldTable, RefusesTablesThatLieOrNestTooDeep) {
  Bytes past_end = bytes({0, 0, 0, 9, 1, 'a', 't', 1});
  ByteReader in(past_end);
  FieldTable t;
  EXPECT_FALSE(read_table(in, t));
  Bytes string_past_table = bytes({0, 0, 0, 8, 1, 'a', 'S', 0, 0, 0, 9, 'x'});
  ByteReader in2(string_past_table);
  EXPECT_FALSE(read_table(in2, t));
  // 40 tables, each the only value of the one around it.
  Bytes deep;
  for (int i = 0; i < 40; ++i) {
    Bytes outer = bytes({0, 0, 0, 0, 1, 'n', 'F'});
    store_be<uint32_t>(outer.data(), static_cast<uint32_t>(3 + deep.size() + (i == 0 ? 4 : 0)));
    if (i == 0) deep = bytes({0, 0, 0, 0});
    outer.insert(outer.end(), deep.begin(), deep.end());
    deep = std::move(outer);
  }
  ByteReader deep_in(deep);
  EXPECT_FALSE(read_table(deep_in, t));
}

TEST(AmqpContentHeader, DecodesPropertiesAndKeepsTheirRawBytes) {
  Bytes payload = wire({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,  // basic, weight, body size 5
                        0x90, 0x00,                           // content-type, delivery-mode
                        10, "text/plain", 2});
  auto decoded = decode_content_header(payload);
  ASSERT_TRUE(decoded) << decoded.error().text;
  EXPECT_EQ(decoded.value().body_size, 5U);
  EXPECT_EQ(decoded.value().properties.content_type, "text/plain");
  EXPECT_TRUE(decoded.value().properties.persistent());
  EXPECT_FALSE(decoded.value().properties.headers);
  Bytes raw(decoded.value().raw_properties.begin(), decoded.value().raw_properties.end());
  EXPECT_EQ(raw, encode_properties(decoded.value().properties));
  Bytes again;
  encode_content_header(5, decoded.value().properties, again);
  EXPECT_EQ(again, payload);

  BasicProperties all;
  all.content_type = "application/json";
  all.content_encoding = "gzip";
  all.headers = FieldTable{{"x-retries", {int32_t{3}}}};
  all.delivery_mode = 1;
  all.priority = 9;
  all.correlation_id = "c";
  all.reply_to = "r";
  all.expiration = "60000";
  all.message_id = "m";
  all.timestamp = 1700000000;
  all.type = "t";
  all.user_id = "guest";
  all.app_id = "a";
  all.cluster_id = "k";
  Bytes full;
  encode_content_header(0, all, full);
  auto round = decode_content_header(full);
  ASSERT_TRUE(round);
  EXPECT_EQ(round.value().properties, all);
}

TEST(AmqpContentHeader, RefusesOtherClassesAndBadProperties) {
  Bytes other_class = wire({0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  auto decoded = decode_content_header(other_class);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::unexpected_frame);
  Bytes cut = wire({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0x00, 9, "short"});
  decoded = decode_content_header(cut);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ReplyCode::syntax_error);
}

}  // namespace
}  // namespace depot::amqp
