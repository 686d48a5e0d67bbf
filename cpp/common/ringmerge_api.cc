// ringmerge: see ringmerge_api.h.
#include "ringmerge_api.h"

#include <string>

namespace ROCKSDB_NAMESPACE {
namespace ringmerge_internal {

const ringmerge::Settings& ProcessSettings() {
  static const ringmerge::Settings settings = ringmerge::settings();
  return settings;
}

Status ToStatus(const ringmerge::MergeStatus& s) {
  std::string msg(s.message.data(), s.message.size());
  switch (s.code) {
    case ringmerge::StatusCode::Ok:
      return Status::OK();
    case ringmerge::StatusCode::IOError:
      return Status::IOError(msg);
    case ringmerge::StatusCode::Corruption:
      return Status::Corruption(msg);
    case ringmerge::StatusCode::NotSupported:
      return Status::NotSupported(msg);
    default:
      return Status::Aborted(msg);
  }
}

rust::Vec<uint8_t> ToBytes(const Slice& s) {
  rust::Vec<uint8_t> v;
  v.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    v.push_back(static_cast<uint8_t>(s[i]));
  }
  return v;
}

}  // namespace ringmerge_internal
}  // namespace ROCKSDB_NAMESPACE
