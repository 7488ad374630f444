// RecordBatch v2 codec, varints and CRC32C.
#include <random>

#include <gtest/gtest.h>

#include "storage/crc32c.h"
#include "storage/errc.h"
#include "storage/record_batch.h"

namespace depot::storage {
namespace {

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values)
    out.push_back(static_cast<std::byte>(v));
  return out;
}

TEST(Crc32c, MatchesPublishedVectors) {
  // "123456789" is the standard check value; the 32-byte vectors are from RFC 3720, B.4.
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  Bytes zeros(32, std::byte{0});
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  Bytes ones(32, std::byte{0xff});
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  Bytes ascending(32);
  for (int i = 0; i < 32; ++i)
    ascending[i] = static_cast<std::byte>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  Bytes descending(32);
  for (int i = 0; i < 32; ++i)
    descending[i] = static_cast<std::byte>(31 - i);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
  EXPECT_EQ(crc32c({}), 0u);
}

TEST(Crc32c, HardwareAndPortableAgreeAndExtend) {
  std::mt19937 rng(7);
  Bytes data(20'000);
  for (auto& b : data)
    b = static_cast<std::byte>(rng());
  // Around the hardware path's stripes of three 256-byte blocks, and many stripes.
  for (size_t start : {0, 1, 3, 7}) {
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 767, 768, 769, 1000, 1536, 4090, 19'990}) {
      ByteSpan piece = ByteSpan(data).subspan(start, len);
      ASSERT_EQ(crc32c(piece), crc32c_portable(piece)) << start << "+" << len;
      // Extending over two halves equals the CRC of the whole.
      size_t half = len / 2;
      EXPECT_EQ(crc32c(piece.subspan(half), crc32c(piece.first(half))), crc32c(piece));
    }
  }
}

TEST(Varint, ZigzagMatchesKafka) {
  EXPECT_EQ(zigzag_encode(0), 0u);
  EXPECT_EQ(zigzag_encode(-1), 1u);
  EXPECT_EQ(zigzag_encode(1), 2u);
  EXPECT_EQ(zigzag_encode(-2), 3u);
  EXPECT_EQ(zigzag_encode(2147483647), 4294967294u);
  EXPECT_EQ(zigzag_encode(-2147483648LL), 4294967295u);
  for (int64_t v :
       {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{300}, int64_t{-300}, INT64_MAX, INT64_MIN}) {
    EXPECT_EQ(zigzag_decode(zigzag_encode(v)), v);
  }
}

TEST(Varint, RoundTripsAndKnownBytes) {
  Bytes out;
  ByteWriter w(out);
  w.write_varint(300);  // zigzag 600 = 0xd8 0x04
  w.write_varint(-1);   // 0x01
  w.write_varlong(INT64_MIN);
  EXPECT_EQ(out[0], std::byte{0xd8});
  EXPECT_EQ(out[1], std::byte{0x04});
  EXPECT_EQ(out[2], std::byte{0x01});
  ByteReader r(out);
  EXPECT_EQ(r.read_varint(), 300);
  EXPECT_EQ(r.read_varint(), -1);
  EXPECT_EQ(r.read_varlong(), INT64_MIN);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

TEST(Varint, RejectsOverlongAndTruncated) {
  Bytes overlong(11, std::byte{0x80});
  ByteReader r1(overlong);
  r1.read_varlong();
  EXPECT_FALSE(r1.ok());
  Bytes six = bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x01});
  ByteReader r2(six);
  r2.read_varint();  // a 32-bit varint has at most 5 bytes
  EXPECT_FALSE(r2.ok());
  Bytes cut = bytes_of({0x80});
  ByteReader r3(cut);
  r3.read_varint();
  EXPECT_FALSE(r3.ok());
}

// A one-record batch assembled by hand from the format description, byte by byte.
TEST(RecordBatch, EncodesTheDocumentedLayout) {
  RecordBatchBuilder builder(
      5, BatchOptions{.producer_id = 9, .producer_epoch = 1, .base_sequence = 3});
  std::string value = "hi";
  builder.add(std::nullopt, as_bytes(value), 1700000000000);
  Bytes batch = builder.build();

  Bytes record = bytes_of({
      0x00,            // record attributes
      0x00,            // timestamp delta 0
      0x00,            // offset delta 0
      0x01,            // key length -1 (null)
      0x04, 'h', 'i',  // value length 2, "hi"
      0x00,            // no headers
  });
  Bytes expected = bytes_of({0, 0, 0, 0, 0, 0, 0, 5});    // base offset 5
  Bytes rest = bytes_of({0xff, 0xff, 0xff, 0xff, 0x02});  // leader epoch -1, magic 2
  Bytes after_crc = bytes_of({0x00, 0x00,                 // attributes
                              0x00, 0x00, 0x00, 0x00});   // last offset delta 0
  Bytes ts(8);
  store_be<int64_t>(ts.data(), 1700000000000);
  after_crc.insert(after_crc.end(), ts.begin(), ts.end());  // base timestamp
  after_crc.insert(after_crc.end(), ts.begin(), ts.end());  // max timestamp
  for (auto b : bytes_of({0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1})) {
    after_crc.push_back(b);  // producer id 9, epoch 1, base sequence 3, 1 record
  }
  after_crc.push_back(std::byte{static_cast<uint8_t>(record.size() * 2)});  // varint length
  after_crc.insert(after_crc.end(), record.begin(), record.end());
  Bytes length(4);
  store_be<int32_t>(length.data(), static_cast<int32_t>(4 + 1 + 4 + after_crc.size()));
  expected.insert(expected.end(), length.begin(), length.end());
  expected.insert(expected.end(), rest.begin(), rest.end());
  Bytes crc(4);
  store_be<uint32_t>(crc.data(), crc32c(after_crc));
  expected.insert(expected.end(), crc.begin(), crc.end());
  expected.insert(expected.end(), after_crc.begin(), after_crc.end());
  EXPECT_EQ(batch, expected);
}

TEST(RecordBatch, RoundTripsKeysValuesHeadersAndNulls) {
  RecordBatchBuilder builder(
      100, BatchOptions{.producer_id = 42, .producer_epoch = 3, .base_sequence = 7});
  std::string k1 = "key-1", v1 = "value-1", hv = "header-value";
  std::vector<HeaderInput> headers = {{"h1", as_bytes(hv)}, {"h2", std::nullopt}};
  builder.add(as_bytes(k1), as_bytes(v1), 1000, headers);
  builder.add(std::nullopt, std::nullopt, 990);  // earlier timestamp: a negative delta
  builder.add(as_bytes(k1), as_bytes(""), 1005);
  Bytes batch = builder.build();

  auto header = validate_batch(batch);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(header.value().base_offset, 100);
  EXPECT_EQ(header.value().last_offset(), 102);
  EXPECT_EQ(header.value().record_count, 3);
  EXPECT_EQ(header.value().base_timestamp, 1000);
  EXPECT_EQ(header.value().max_timestamp, 1005);
  EXPECT_EQ(header.value().producer_id, 42);
  EXPECT_EQ(header.value().producer_epoch, 3);
  EXPECT_EQ(header.value().base_sequence, 7);
  EXPECT_EQ(header.value().size_bytes(), batch.size());

  auto records = decode_records(batch);
  ASSERT_TRUE(records) << records.error().message();
  ASSERT_EQ(records.value().size(), 3u);
  const auto& r0 = records.value()[0];
  EXPECT_EQ(r0.offset, 100);
  EXPECT_EQ(r0.timestamp, 1000);
  EXPECT_EQ(as_chars(*r0.key), "key-1");
  EXPECT_EQ(as_chars(*r0.value), "value-1");
  ASSERT_EQ(r0.headers.size(), 2u);
  EXPECT_EQ(r0.headers[0].key, "h1");
  EXPECT_EQ(as_chars(*r0.headers[0].value), "header-value");
  EXPECT_FALSE(r0.headers[1].value.has_value());
  const auto& r1 = records.value()[1];
  EXPECT_EQ(r1.offset, 101);
  EXPECT_EQ(r1.timestamp, 990);
  EXPECT_FALSE(r1.key.has_value());
  EXPECT_FALSE(r1.value.has_value());
  const auto& r2 = records.value()[2];
  ASSERT_TRUE(r2.value.has_value());
  EXPECT_TRUE(r2.value->empty());
}

TEST(RecordBatch, AValueWrittenInPlaceMakesTheSameBytesAsOneAdded) {
  // Sizes around the varint steps of the value's and the record's lengths (63/64, 8191/8192).
  for (size_t size : {0, 1, 50, 63, 64, 100, 8'170, 8'191, 8'192, 70'000}) {
    Bytes value(size);
    for (size_t i = 0; i < size; ++i)
      value[i] = static_cast<std::byte>(i * 7);
    const Bytes key = bytes_of({1, 2, 3});
    for (bool with_key : {false, true}) {
      const std::optional<ByteSpan> k =
          with_key ? std::optional<ByteSpan>(ByteSpan(key)) : std::nullopt;
      RecordBatchBuilder added(5);
      RecordBatchBuilder in_place(5);
      // Two records, the second later: its timestamp and offset deltas are not zero.
      for (int64_t ts : {1'000, 1'300}) {
        added.add(k, ByteSpan(value), ts);
        in_place.add_in_place(k, size, ts, [&](ByteWriter& w) {
          // In two parts, as a caller assembling a value would.
          w.write_bytes(ByteSpan(value).first(size / 2));
          w.write_bytes(ByteSpan(value).subspan(size / 2));
        });
      }
      EXPECT_EQ(in_place.size_bytes(), added.size_bytes()) << size;
      Bytes expected = added.build();
      Bytes got = in_place.build();
      ASSERT_EQ(got, expected) << "value of " << size << " bytes, key " << with_key;
      ASSERT_TRUE(validate_batch(got));

      // Built once, the builder starts a new batch, with its header's room again.
      in_place.add_in_place(std::nullopt, 1, 2'000, [](ByteWriter& w) { w.write_be<uint8_t>(42); });
      const Bytes next = in_place.build();
      auto records = decode_records(next);
      ASSERT_TRUE(records);
      ASSERT_EQ(records.value().size(), 1u);
      EXPECT_EQ(records.value()[0].offset, 5);
      EXPECT_EQ(Bytes(records.value()[0].value->begin(), records.value()[0].value->end()),
                bytes_of({42}));
    }
  }
  // A builder with nothing added still builds a valid, empty batch.
  RecordBatchBuilder empty;
  Bytes none = empty.build();
  EXPECT_EQ(none.size(), kBatchHeaderSize);
  EXPECT_TRUE(validate_batch(none));
}

TEST(RecordBatch, BaseOffsetRewriteKeepsTheCrcValid) {
  Bytes batch = RecordBatchBuilder(0).build();
  set_base_offset(batch, 123456789);
  auto h = validate_batch(batch);
  ASSERT_TRUE(h);
  EXPECT_EQ(h.value().base_offset, 123456789);
}

TEST(RecordBatch, LogAppendTimeRewritesTimestampsAndCrc) {
  RecordBatchBuilder builder;
  builder.add(std::nullopt, as_bytes("a"), 10);
  builder.add(std::nullopt, as_bytes("b"), 20);
  Bytes batch = builder.build();
  set_log_append_time(batch, 5555);
  auto h = validate_batch(batch);
  ASSERT_TRUE(h);
  EXPECT_EQ(h.value().timestamp_type(), TimestampType::log_append_time);
  auto records = decode_records(batch);
  ASSERT_TRUE(records);
  for (const auto& r : records.value())
    EXPECT_EQ(r.timestamp, 5555);
}

TEST(RecordBatch, DetectsEveryFlippedBit) {
  RecordBatchBuilder builder;
  builder.add(as_bytes("k"), as_bytes("some value"), 1);
  Bytes batch = builder.build();
  // Flipping any bit covered by the CRC (or the magic/length) must be caught.
  for (size_t i = 8; i < batch.size(); ++i) {
    if (i >= 12 && i < 16) continue;  // partition leader epoch is outside the CRC, as in Kafka
    for (int bit = 0; bit < 8; ++bit) {
      Bytes copy = batch;
      copy[i] ^= static_cast<std::byte>(1 << bit);
      EXPECT_FALSE(validate_batch(copy)) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(RecordBatch, TruncatedInputIsAnErrorAtEveryLength) {
  RecordBatchBuilder builder;
  for (int i = 0; i < 5; ++i)
    builder.add(as_bytes("key"), as_bytes("value"), i);
  Bytes batch = builder.build();
  for (size_t len = 0; len < batch.size(); ++len) {
    ByteSpan cut = ByteSpan(batch).first(len);
    EXPECT_FALSE(validate_batch(cut)) << len;
    EXPECT_FALSE(decode_records(cut)) << len;
  }
}

TEST(RecordBatch, RejectsLiesInsideAValidCrc) {
  // A batch whose header claims more records than it holds, with a correct CRC.
  RecordBatchBuilder builder;
  builder.add(as_bytes("k"), as_bytes("v"), 1);
  Bytes batch = builder.build();
  store_be<int32_t>(batch.data() + 57, 2);
  ByteSpan covered = ByteSpan(batch).subspan(kBatchAttributesOffset);
  store_be<uint32_t>(batch.data() + kBatchCrcOffset, crc32c(covered));
  ASSERT_TRUE(validate_batch(batch));
  EXPECT_EQ(decode_records(batch).error(), errc::bad_record);

  Bytes wrong_magic = builder.build();
  wrong_magic[16] = std::byte{1};
  EXPECT_EQ(validate_batch(wrong_magic).error(), errc::bad_magic);
}

TEST(RecordBatch, CompressedRecordsAreNotDecoded) {
  RecordBatchBuilder builder;
  builder.add(as_bytes("k"), as_bytes("v"), 1);
  Bytes batch = builder.build();
  store_be<int16_t>(batch.data() + kBatchAttributesOffset, 1);  // gzip
  EXPECT_EQ(decode_records(batch).error(), errc::compressed_batch);
}

}  // namespace
}  // namespace depot::storage
