// A small RAII layer over SQLite for the embedded backend.
//
// Errors are sticky on the connection: statements that fail record the first
// error and later calls do nothing. The shard checks failed() once before
// committing a batch and rolls the whole batch back, so object code does not
// branch on every statement and a half-applied batch can never commit.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace switchyard::gateway::embedded {

class database;

class statement {
public:
    statement(database& db, sqlite3_stmt* s) : db_(&db), stmt_(s) {}
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    statement(statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
    ~statement();

    // Resets the statement and binds the arguments to ?1, ?2, ...
    template <class... Args> statement& bind(const Args&... args) {
        reset();
        int i = 0;
        (bind_one(++i, args), ...);
        return *this;
    }

    // Steps once: true while a row is available.
    bool step();
    // Runs to completion (for writes).
    void run() {
        while (step()) {
        }
    }

    std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) const;
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

private:
    void reset();
    void bind_one(int i, std::int64_t v);
    void bind_one(int i, int v) { bind_one(i, static_cast<std::int64_t>(v)); }
    void bind_one(int i, unsigned v) { bind_one(i, static_cast<std::int64_t>(v)); }
    void bind_one(int i, std::uint64_t v) { bind_one(i, static_cast<std::int64_t>(v)); }
    void bind_one(int i, bool v) { bind_one(i, static_cast<std::int64_t>(v)); }
    void bind_one(int i, std::string_view v);
    void bind_one(int i, const std::string& v) { bind_one(i, std::string_view(v)); }
    void bind_one(int i, const char* v) { bind_one(i, std::string_view(v)); }

    database* db_;
    sqlite3_stmt* stmt_;
};

enum class durability { full, normal };

class database {
public:
    // Opens (creating if needed) in WAL mode. Throws std::runtime_error when
    // the file cannot be opened: that is a start-up failure, not a data path.
    database(const std::filesystem::path& file, durability d);
    ~database();
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    // A cached prepared statement for this SQL text.
    statement& prepare(std::string_view sql);
    // The same for a string literal, found by its address: the hot paths
    // run a statement per frame and should not hash its text every time.
    statement& prepare(const char* literal);
    // Runs SQL with no results (schema, pragmas, BEGIN/COMMIT).
    void exec(std::string_view sql);

    bool failed() const { return error_.has_value(); }
    const std::string& error() const { return *error_; }
    void clear_error() { error_.reset(); }
    void record_error(int rc);

    sqlite3* handle() const { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, std::unique_ptr<statement>> cache_;
    std::unordered_map<const char*, statement*> by_address_;
    std::optional<std::string> error_;
};

}  // namespace switchyard::gateway::embedded
