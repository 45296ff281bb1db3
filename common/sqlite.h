// A prepared SQLite statement: bind by position, step, read columns. Shared by
// the provisioner's store and storaged's state (both link SQLite3).
//
//   SqlStmt q(db, "SELECT id, size FROM volumes WHERE name=?");
//   q.Bind(name);
//   CAIRN_ASSIGN_OR_RETURN(auto rows, q.All([](SqlStmt& q) { return q.Text(0); }));
//   CAIRN_RETURN_IF_ERROR(SqlStmt(db, "DELETE FROM t WHERE id=?").Bind(id).Run());
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn {

// Internal("sqlite: WHAT: <sqlite's message>").
inline Status SqlError(sqlite3* db, const std::string& what) {
  return Status::Internal("sqlite: " + what + ": " + sqlite3_errmsg(db));
}

class SqlStmt {
 public:
  SqlStmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~SqlStmt() { sqlite3_finalize(stmt_); }
  SqlStmt(const SqlStmt&) = delete;
  SqlStmt& operator=(const SqlStmt&) = delete;

  Status status() const { return rc_ == SQLITE_OK ? Status::Ok() : SqlError(db_, "prepare"); }
  SqlStmt& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  SqlStmt& Bind(const char* v) { return Bind(std::string(v)); }
  SqlStmt& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  SqlStmt& Bind(uint64_t v) { return Bind(static_cast<int64_t>(v)); }
  SqlStmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  SqlStmt& Bind(bool v) { return Bind(static_cast<int64_t>(v ? 1 : 0)); }
  SqlStmt& Bind(const nlohmann::json& v) { return Bind(v.dump()); }
  template <class... Args>
  SqlStmt& BindAll(const Args&... args) {
    (Bind(args), ...);
    return *this;
  }

  // SQLITE_ROW → true, SQLITE_DONE → false; a constraint violation is AlreadyExists.
  StatusOr<bool> Step() {
    if (rc_ != SQLITE_OK) return SqlError(db_, "prepare");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT) {
      return Status::AlreadyExists(std::string("constraint: ") + sqlite3_errmsg(db_));
    }
    return SqlError(db_, "step");
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  bool IsInt(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_INTEGER; }
  bool IsText(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_TEXT; }
  int64_t Int(int i) { return sqlite3_column_int64(stmt_, i); }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string();
  }
  // The column parsed as JSON; an empty object when it does not parse.
  nlohmann::json Json(int i) {
    auto j = nlohmann::json::parse(Text(i), nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
  }

  // Every remaining row, each read with `read(*this)`.
  template <class Read>
  auto All(Read read) -> StatusOr<std::vector<decltype(read(*this))>> {
    std::vector<decltype(read(*this))> out;
    for (;;) {
      auto r = Step();
      if (!r.ok()) return r.status();
      if (!*r) return out;
      out.push_back(read(*this));
    }
  }
  // The next row, if any, read with `read(*this)`.
  template <class Read>
  auto First(Read read) -> StatusOr<std::optional<decltype(read(*this))>> {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return std::optional<decltype(read(*this))>();
    return std::optional<decltype(read(*this))>(read(*this));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
  int n_ = 0;
};

}  // namespace cairn
