#include "gateway/backends/embedded/backend.hpp"

#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/password_pool.hpp"
#include "gateway/backends/embedded/users.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace switchyard::gateway::embedded {

namespace {

std::uint64_t system_now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// How long a deadline whose batch failed to commit waits before its next try.
constexpr std::uint64_t retry_after_failure_ms = 1000;

struct envelope {
    frame::frame f;
    backends::frame_sink reply;  // empty for object-to-object frames
    bool answer = false;         // the answer to a request f.object made (object::answer)
    std::shared_ptr<const hashed_password> password;  // account_create, account_password: hashed by backend::send
};

bool is_room(std::string_view id) { return id.starts_with("room:"); }
bool is_directory(std::string_view id) { return id == "accounts:"; }

// Whether the frame's object may write anything a restart keeps: the
// object kind answers (object.hpp). Ids of neither kind are refused.
bool needs_sync(const frame::frame& f) {
    if (f.object.starts_with("user:")) {
        return user_needs_sync(f);
    }
    if (is_room(f.object)) {
        return room_needs_sync(f);
    }
    return !is_directory(f.object);  // the directory only reads
}

frame::frame reply_to(const frame::frame& request, frame::body b) {
    return frame::frame{request.corr, request.object, {}, std::move(b)};
}

}  // namespace

class shard {
public:
    shard(backend& owner, const options& opt)
        : owner_(owner), opt_(opt), db_(opt.file, opt.sync), thread_([this] { run(); }) {}

    ~shard() { stop(); }

    // Applies what is queued, then ends the thread.
    void stop() {
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    // After stop: applies what other shards queued here since (answers to
    // this shard's requests among them), on the calling thread. Returns
    // whether there was anything.
    bool drain() {
        std::vector<envelope> batch;
        {
            const std::lock_guard lock(mutex_);
            batch.swap(inbox_);
        }
        if (batch.empty()) {
            return false;
        }
        apply_batch(batch);
        return true;
    }

    void post(envelope e) {
        bool sleeping = false;
        {
            const std::lock_guard lock(mutex_);
            inbox_.push_back(std::move(e));
            sleeping = sleeping_;
        }
        // A busy shard finds the frame when it takes its next batch; waking
        // it on every frame would cost a system call per frame.
        if (sleeping) {
            wake_.notify_one();
        }
    }

    void subscribe(std::string_view id, backends::frame_sink sink) {
        auto shared = std::make_shared<const backends::frame_sink>(std::move(sink));
        const std::lock_guard lock(sub_mutex_);
        subscribers_.insert_or_assign(std::string(id), std::move(shared));
    }

    void unsubscribe(std::string_view id) {
        const std::lock_guard lock(sub_mutex_);
        subscribers_.erase(std::string(id));
    }

    statistics stats() const {
        const std::lock_guard lock(stats_mutex_);
        return stats_;
    }

    std::string last_error() const {
        const std::lock_guard lock(stats_mutex_);
        return last_error_;
    }

private:
    std::uint64_t now_ms() const { return opt_.clock ? opt_.clock() : system_now_ms(); }

    // The earliest deadline of a resident object, 0 for none.
    std::uint64_t earliest_deadline() const {
        std::uint64_t first = 0;
        for (const auto& [id, at] : deadlines_) {
            first = first == 0 ? at : std::min(first, at);
        }
        return first;
    }

    void run() {
        std::vector<envelope> batch;
        auto next_sweep = std::chrono::steady_clock::now();
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                const auto sweep_every = std::max(std::chrono::milliseconds(1), opt_.hibernate_after / 2);
                // Objects' deadlines are on the backend's clock; the wait is
                // on the steady clock, for as long as the first one is ahead.
                auto wake_at = next_sweep;
                if (const std::uint64_t first = earliest_deadline(); first != 0) {
                    const std::uint64_t now = now_ms();
                    const auto ahead = std::chrono::milliseconds(first > now ? first - now : 0);
                    wake_at = std::min(wake_at, std::chrono::steady_clock::now() + ahead);
                }
                sleeping_ = true;
                wake_.wait_until(lock, wake_at, [&] { return stopping_ || !inbox_.empty(); });
                sleeping_ = false;
                if (inbox_.empty() && stopping_) {
                    return;
                }
                if (inbox_.size() <= opt_.max_batch) {
                    batch.swap(inbox_);
                } else {
                    auto cut = inbox_.begin() + static_cast<std::ptrdiff_t>(opt_.max_batch);
                    batch.assign(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(cut));
                    inbox_.erase(inbox_.begin(), cut);
                }
                if (std::chrono::steady_clock::now() >= next_sweep) {
                    next_sweep = std::chrono::steady_clock::now() + sweep_every;
                    lock.unlock();
                    hibernate_idle();
                }
            }
            const std::uint64_t first = earliest_deadline();
            if (!batch.empty() || (first != 0 && first <= now_ms())) {
                apply_batch(batch);
                batch.clear();
            }
        }
    }

    object& resident(const std::string& id, std::uint64_t now) {
        auto it = objects_.find(id);
        if (it == objects_.end()) {
            auto obj = is_room(id) ? load_room(db_, id.substr(5))
                       : is_directory(id) ? load_directory()
                                          : load_user(db_, id.substr(5));
            it = objects_.emplace(id, std::move(obj)).first;
            ++local_.wakes;
        }
        it->second->last_used_ms = now;
        return *it->second;
    }

    void apply_batch(std::vector<envelope>& batch) {
        context ctx(db_, opt_, now_ms());
        std::vector<std::string_view> touched;
        touched.reserve(batch.size());

        // Sign-ins, sign-outs and status changes would otherwise wait for the
        // disk under durability = full. A batch whose objects say none of its
        // frames writes more than live endpoints (needs_sync) commits without
        // the sync: a crash of the process still keeps it, the next synced
        // commit makes it durable too (the WAL is one sequence), and a power
        // loss before then loses only state a restart clears anyway. SQLite
        // allows the change between transactions only, so the objects answer
        // from the frames before the transaction begins.
        // An answer may complete any request the object held (an add to
        // a list): it always counts as a change.
        const bool relaxed_frames = opt_.sync == durability::full &&
                                    std::none_of(batch.begin(), batch.end(),
                                                 [](const envelope& e) { return e.answer || needs_sync(e.f); });
        // Deadlines that have passed count among the batch's changes.
        std::vector<std::string> due;
        for (const auto& [id, at] : deadlines_) {
            if (at <= ctx.now_ms) {
                due.push_back(id);
            }
        }
        const bool relaxed = relaxed_frames && due.empty();
        if (relaxed) {
            db_.exec("PRAGMA synchronous=NORMAL");
        }
        // IMMEDIATE takes the write lock up front: another shard's
        // transaction makes this one wait rather than fail on upgrade.
        db_.exec("BEGIN IMMEDIATE");
        // Passed deadlines first: a frame that comes after a deadline finds
        // its effect (a grace period over) applied.
        for (const std::string& id : due) {
            object& o = resident(id, ctx.now_ms);
            if (const std::uint64_t at = o.deadline_ms(); at != 0 && at <= ctx.now_ms) {
                ctx.begin_deadline(id);
                o.expire(ctx);
            }
            touched.push_back(id);
        }
        for (envelope& e : batch) {
            ctx.begin(&e.reply, e.f, e.password.get());
            if (!e.f.object.starts_with("user:") && !is_room(e.f.object) && !is_directory(e.f.object)) {
                ctx.fail(frame::error_code::unknown_object, "object ids start with user: or room:");
                continue;
            }
            if (e.answer) {
                resident(e.f.object, ctx.now_ms).answer(e.f, ctx);
            } else {
                resident(e.f.object, ctx.now_ms).apply(e.f, ctx);
            }
            touched.push_back(e.f.object);
        }
        if (!db_.failed()) {
            db_.exec("COMMIT");
        }
        if (relaxed) {
            db_.exec("PRAGMA synchronous=FULL");
        }
        if (db_.failed()) {
            fail_batch(batch, touched);
            // Those objects are loaded again and their deadlines applied on
            // a later try, not at once: storage that fails now may still.
            for (const std::string& id : due) {
                deadlines_.insert_or_assign(id, ctx.now_ms + retry_after_failure_ms);
            }
            return;
        }
        // Deadlines as the objects now have them.
        for (const std::string_view id : touched) {
            const auto it = objects_.find(std::string(id));
            const std::uint64_t at = it == objects_.end() ? 0 : it->second->deadline_ms();
            if (at != 0) {
                deadlines_.insert_or_assign(std::string(id), at);
            } else {
                deadlines_.erase(std::string(id));
            }
        }
        local_.frames += batch.size();
        ++local_.commits;
        local_.unsynced_commits += relaxed ? 1 : 0;
        publish_stats();  // before the replies, so a requester sees its own batch counted
        if (opt_.after_commit) {
            opt_.after_commit(static_cast<std::size_t>(std::ranges::count_if(
                ctx.sends, [](const context::sent& s) { return s.asker.empty(); })));
        }

        // One burst for what follows: receivers wake their threads once.
        const backends::release_burst burst;
        // The output gate: nothing leaves before the commit above. Frames to
        // other objects are queued first: a client that has seen its reply
        // and then acts on another object (a contact signs in and SYNs right
        // after being added) reaches that object behind the notice, since
        // each shard's inbox is first in, first out.
        for (context::sent& s : ctx.sends) {
            owner_.deliver_internal(std::move(s.f), s.asker);
        }
        for (auto& [reply_sink, f] : ctx.released) {
            if (reply_sink) {
                (*reply_sink)(std::move(f));
                continue;
            }
            std::shared_ptr<const backends::frame_sink> sink;
            {
                const std::lock_guard lock(sub_mutex_);
                if (auto it = subscribers_.find(f.object); it != subscribers_.end()) {
                    sink = it->second;
                }
            }
            if (sink) {
                (*sink)(std::move(f));
            }
        }
        for (later_reply& d : ctx.later) {
            owner_.reply_later(std::move(d));
        }
    }

    // Nothing in the batch committed: its objects may hold changes that are
    // not in the file, so they are dropped and reloaded on their next frame.
    void fail_batch(std::vector<envelope>& batch, const std::vector<std::string_view>& touched) {
        const std::string reason = "storage failure: " + db_.error();
        db_.clear_error();
        db_.exec("ROLLBACK");
        db_.clear_error();
        const frame::error lost{frame::error_code::internal, reason};
        for (const std::string_view id : touched) {
            if (const auto it = objects_.find(std::string(id)); it != objects_.end()) {
                it->second->abandon(lost);
                objects_.erase(it);
            }
        }
        for (envelope& e : batch) {
            if (e.reply) {
                e.reply(error_reply(e.f, frame::error_code::internal, reason));
            }
        }
        ++local_.storage_errors;
        {
            const std::lock_guard lock(stats_mutex_);
            last_error_ = reason;
        }
        publish_stats();
    }

    static frame::frame error_reply(const frame::frame& request, frame::error_code code, std::string reason) {
        return frame::frame{request.corr, request.object, {}, frame::error{code, std::move(reason)}};
    }

    void hibernate_idle() {
        const std::uint64_t now = now_ms();
        const auto idle = static_cast<std::uint64_t>(opt_.hibernate_after.count());
        std::erase_if(objects_, [&](const auto& kv) {
            // An object waiting for a deadline stays: nothing else would wake it.
            if (now - kv.second->last_used_ms < idle || kv.second->deadline_ms() != 0) {
                return false;
            }
            ++local_.hibernations;
            return true;
        });
        publish_stats();
    }

    void publish_stats() {
        local_.resident = objects_.size();
        const std::lock_guard lock(stats_mutex_);
        stats_ = local_;
    }

    backend& owner_;
    const options& opt_;
    database db_;
    std::unordered_map<std::string, std::unique_ptr<object>> objects_;  // the shard thread's alone
    std::unordered_map<std::string, std::uint64_t> deadlines_;          // object id -> its deadline_ms()
    statistics local_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<envelope> inbox_;
    bool stopping_ = false;
    bool sleeping_ = false;  // waiting on wake_: posts must notify

    std::mutex sub_mutex_;
    std::unordered_map<std::string, std::shared_ptr<const backends::frame_sink>> subscribers_;

    mutable std::mutex stats_mutex_;
    statistics stats_;
    std::string last_error_;

    std::thread thread_;  // last: starts after everything above exists
};

namespace {

// One process at a time serves a database: a second backend on the same
// file (another `switchyard run`, or an operator command beside a running
// gateway) is told who holds it rather than writing beside its writers.
int lock_database(const std::filesystem::path& file) {
    const std::filesystem::path lock_file = file.string() + ".lock";
    const int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw std::runtime_error(lock_file.string() + ": " + std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char pid[32] = {};
        const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
        ::close(fd);
        if (err == EWOULDBLOCK) {
            throw database_in_use(file.string() + ": in use by another switchyard process" +
                                  (n > 0 ? " (pid " + std::string(pid, static_cast<std::size_t>(n)) + ")" : std::string()));
        }
        throw std::runtime_error(lock_file.string() + ": " + std::strerror(err));
    }
    const std::string me = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
        // The pid only makes the message above friendlier.
    }
    return fd;
}

}  // namespace

std::uint64_t context::next_request_id() {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

backend::backend(options opt) : opt_(std::move(opt)), lock_fd_(lock_database(opt_.file)) {
    anchor_->self = this;
    if (opt_.shards == 0) {
        opt_.shards = std::max(1u, std::thread::hardware_concurrency());
    }
    passwords_ = std::make_unique<password_pool>(opt_.password_threads, opt_.password_queue);
    std::vector<frame::frame> unacknowledged;
    try {
        database db(opt_.file, opt_.sync);
        create_schema(db);
        clear_endpoints(db, opt_.end_switchboards_at_start);
        unacknowledged = unacknowledged_notices(db);
        if (db.failed()) {
            throw std::runtime_error(opt_.file.string() + ": " + db.error());
        }
    } catch (...) {
        ::close(lock_fd_);
        throw;
    }
    for (unsigned i = 0; i < opt_.shards; ++i) {
        shards_.push_back(std::make_unique<shard>(*this, opt_));
    }
    // Notices whose receivers may not have applied them before the last run
    // ended (gateway/backends/README.md, "Reverse-list exchange"), and
    // removed accounts' departures: ahead of every frame of this run, so
    // each pair's notices stay in order. Through a router, only once it
    // reaches this backend and the others (send_unacknowledged).
    unacknowledged_ = std::move(unacknowledged);
    if (!opt_.outbound) {
        send_unacknowledged();
    }
}

void backend::send_unacknowledged() {
    for (frame::frame& f : std::exchange(unacknowledged_, {})) {
        deliver_internal(std::move(f));
    }
}

backend::~backend() {
    // Hashed passwords go to shards and checks come from them: the pool
    // stops first. Shards hand frames to each other: every thread ends
    // before any shard is destroyed.
    passwords_->stop();
    for (auto& s : shards_) {
        s->stop();
    }
    // What they handed each other while they stopped (an answer to a
    // request, and the frames an object held waiting for it) is applied
    // here, until nothing is left.
    for (bool more = true; more;) {
        more = false;
        for (auto& s : shards_) {
            more = s->drain() || more;
        }
    }
    {
        const std::lock_guard lock(anchor_->mutex);
        anchor_->self = nullptr;
    }
    shards_.clear();
    ::close(lock_fd_);
}

shard& backend::shard_for(std::string_view object_id) {
    return *shards_[std::hash<std::string_view>{}(object_id) % shards_.size()];
}

void backend::send(frame::frame f, backends::frame_sink reply) {
    std::string* password = nullptr;
    if (auto* c = std::get_if<frame::account_create>(&f.content)) {
        password = &c->password;
    } else if (auto* p = std::get_if<frame::account_password>(&f.content)) {
        password = &p->password;
    }
    if (password == nullptr) {
        shard_for(f.object).post({std::move(f), std::move(reply), false, nullptr});
        return;
    }
    // A new password is hashed before the frame is queued, so the shard
    // stores what it is given; the frame that reaches the object carries the
    // hash alone.
    auto job = std::make_shared<envelope>(envelope{std::move(f), std::move(reply), false, nullptr});
    const bool queued = passwords_->post([this, job] {
        std::string* plain = std::holds_alternative<frame::account_create>(job->f.content)
                                 ? &std::get<frame::account_create>(job->f.content).password
                                 : &std::get<frame::account_password>(job->f.content).password;
        const std::string_view handle = std::string_view(job->f.object).substr(5);
        auto hashed = hash_new_password(opt_.kdf, opt_.passwords, handle, *plain);
        plain->clear();
        if (!hashed) {
            if (job->reply) {
                job->reply(reply_to(job->f, frame::error{hashed.error().code == account_errc::weak_password
                                                             ? frame::error_code::not_allowed
                                                             : frame::error_code::internal,
                                                         hashed.error().message}));
            }
            return;
        }
        job->password = std::make_shared<const hashed_password>(std::move(*hashed));
        shard_for(job->f.object).post(std::move(*job));
    });
    if (!queued && job->reply) {
        job->reply(reply_to(job->f, frame::error{frame::error_code::rate_limited, "too many passwords to hash; try again"}));
    }
}

void backend::reply_later(later_reply d) {
    auto job = std::make_shared<later_reply>(std::move(d));
    const bool queued = passwords_->post([job] {
        job->sink(frame::frame{job->corr, job->object, {}, job->work()});
    });
    if (!queued) {
        job->sink(frame::frame{job->corr, job->object, {},
                               frame::error{frame::error_code::rate_limited, "too many logins waiting; try again"}});
    }
}

void backend::deliver_internal(frame::frame f, const std::string& asker) {
    backends::frame_sink reply;
    if (!asker.empty()) {
        // The target's reply comes back as a frame of the asker's: queued
        // to its shard like any frame, whichever thread or link brings it.
        reply = [anchor = anchor_, asker](frame::frame r) {
            r.object = asker;
            const std::lock_guard lock(anchor->mutex);
            if (anchor->self) {
                anchor->self->post_answer(std::move(r));
            }
        };
    } else if (opt_.outbound) {
        reply = [](frame::frame) {};  // one-way: the target's refusals go nowhere
    }
    if (opt_.outbound) {
        opt_.outbound(std::move(f), std::move(reply));
        return;
    }
    shard& s = shard_for(f.object);
    s.post({std::move(f), std::move(reply), false, nullptr});
}

void backend::post_answer(frame::frame f) {
    shard& s = shard_for(f.object);
    s.post({std::move(f), {}, true, nullptr});
}

void backend::subscribe(std::string_view object_id, backends::frame_sink sink) {
    shard_for(object_id).subscribe(object_id, std::move(sink));
}

void backend::unsubscribe(std::string_view object_id) { shard_for(object_id).unsubscribe(object_id); }

backends::health backend::check() const {
    for (const auto& s : shards_) {
        if (auto e = s->last_error(); !e.empty()) {
            return {false, e};
        }
    }
    return {true, {}};
}

statistics backend::stats() const {
    statistics total;
    for (const auto& s : shards_) {
        const statistics one = s->stats();
        total.frames += one.frames;
        total.commits += one.commits;
        total.unsynced_commits += one.unsynced_commits;
        total.wakes += one.wakes;
        total.hibernations += one.hibernations;
        total.resident += one.resident;
        total.storage_errors += one.storage_errors;
    }
    return total;
}

}  // namespace switchyard::gateway::embedded
