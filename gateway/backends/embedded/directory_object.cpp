// `accounts:`: the directory of the accounts one embedded backend holds
// (gateway/backends/README.md, "Accounts"). It answers account_list from
// the users table, which each user object writes for its own account.
#include "gateway/backends/embedded/object.hpp"

#include <algorithm>

namespace switchyard::gateway::embedded {

namespace {

class directory_object final : public object {
public:
    void apply(const frame::frame& f, context& ctx) override {
        const auto* request = std::get_if<frame::account_list>(&f.content);
        if (request == nullptr) {
            ctx.fail(frame::error_code::not_allowed, "accounts: answers account_list only");
            return;
        }
        const std::size_t limit =
            std::clamp<std::size_t>(request->limit == 0 ? frame::limits::accounts : request->limit, 1,
                                    frame::limits::accounts);
        // One more than asked says whether more follow.
        auto found = list_accounts(ctx.db, request->after, limit + 1);
        frame::account_list reply;
        reply.more = found.size() > limit;
        found.resize(std::min(found.size(), limit));
        reply.accounts.reserve(found.size());
        for (auto& a : found) {
            reply.accounts.push_back({std::move(a.handle), std::move(a.display_name), a.legacy_md5, a.created_ms});
        }
        ctx.reply(std::move(reply));
    }
};

}  // namespace

std::unique_ptr<object> load_directory() { return std::make_unique<directory_object>(); }

}  // namespace switchyard::gateway::embedded
