#include "gateway/router/hub.hpp"

#include <future>
#include <vector>

namespace switchyard::gateway {

void hub::watched::rebuild() {
    auto all = std::make_shared<std::vector<local_sink>>();
    all->reserve(sinks.size());
    for (const auto& [id, sink] : sinks) {
        all->push_back(sink);
    }
    snapshot = std::move(all);
}

hub::~hub() {
    std::unordered_map<std::string, std::shared_ptr<backends::adapter>> doomed;
    {
        const std::unique_lock lock(backends_mutex_);
        doomed.swap(backends_);
    }
    std::unordered_map<std::string, watched> unwatched;
    {
        const std::lock_guard lock(mutex_);
        unwatched.swap(watched_);
    }
    // One at a time, outside the lock: a backend that stops may still send
    // through this hub, which finds no backend now.
    while (!doomed.empty()) {
        doomed.erase(doomed.begin());
    }
}

void hub::add_backend(std::string name, std::shared_ptr<backends::adapter> adapter) {
    const std::unique_lock lock(backends_mutex_);
    backends_.insert_or_assign(std::move(name), std::move(adapter));
}

std::shared_ptr<backends::adapter> hub::backend(std::string_view name) const {
    const std::shared_lock lock(backends_mutex_);
    const auto it = backends_.find(std::string(name));
    return it == backends_.end() ? nullptr : it->second;
}

std::shared_ptr<backends::adapter> hub::adapter_for(std::string_view object_id) const {
    const auto table = routes_.table();
    if (!table) {
        return nullptr;
    }
    const std::shared_lock lock(backends_mutex_);
    const auto it = backends_.find(std::string(table->lookup(object_id).backend));
    return it == backends_.end() ? nullptr : it->second;
}

bool hub::send(frame::frame f, backends::frame_sink reply) {
    auto adapter = adapter_for(f.object);
    if (!adapter) {
        return false;
    }
    stats_.frame_out(f);
    adapter->send(std::move(f), [this, reply = std::move(reply)](frame::frame r) {
        stats_.frame_in(r);
        if (const auto* e = std::get_if<frame::error>(&r.content)) {
            stats_.error(e->code);
        }
        reply(std::move(r));
    });
    return true;
}

std::optional<frame::frame> hub::call(frame::frame f, std::chrono::milliseconds timeout) {
    f.corr = 1;  // any but 0: the adapter matches replies per request
    auto answer = std::make_shared<std::promise<frame::frame>>();
    auto future = answer->get_future();
    auto once = std::make_shared<std::once_flag>();
    const bool sent = send(std::move(f), [answer, once](frame::frame r) {
        // A presence burst may precede a final reply; account frames have none.
        if (std::holds_alternative<frame::presence_update>(r.content)) return;
        std::call_once(*once, [&] { answer->set_value(std::move(r)); });
    });
    if (!sent || future.wait_for(timeout) != std::future_status::ready) {
        return std::nullopt;
    }
    return future.get();
}

std::uint64_t hub::watch(const std::string& object_id, local_sink sink) {
    const std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    auto [it, first] = watched_.try_emplace(object_id);
    it->second.sinks.emplace(id, std::move(sink));
    it->second.rebuild();
    // Subscribing under the lock means a concurrent unwatch of the last
    // watcher cannot unsubscribe before the subscription exists.
    if (first && (it->second.adapter = adapter_for(object_id))) {
        it->second.adapter->subscribe(object_id, [this, object_id](frame::frame f) { deliver(object_id, std::move(f)); });
    }
    return id;
}

void hub::unwatch(const std::string& object_id, std::uint64_t id) {
    const std::lock_guard lock(mutex_);
    auto it = watched_.find(object_id);
    if (it == watched_.end() || it->second.sinks.erase(id) == 0) {
        return;
    }
    it->second.rebuild();
    if (!it->second.sinks.empty()) {
        return;
    }
    if (it->second.adapter) {
        it->second.adapter->unsubscribe(object_id);
    }
    watched_.erase(it);
}

void hub::deliver(const std::string& object_id, frame::frame f) {
    stats_.frame_in(f);
    auto shared = std::make_shared<const frame::frame>(std::move(f));
    std::shared_ptr<const std::vector<local_sink>> sinks;
    {
        const std::lock_guard lock(mutex_);
        const auto it = watched_.find(object_id);
        if (it == watched_.end()) {
            return;
        }
        sinks = it->second.snapshot;
    }
    for (const local_sink& s : *sinks) {
        s(shared);
    }
}

std::size_t hub::watched_objects() const {
    const std::lock_guard lock(mutex_);
    return watched_.size();
}

backends::health hub::check() const {
    const std::shared_lock lock(backends_mutex_);
    for (const auto& [name, adapter] : backends_) {
        if (auto h = adapter->check(); !h.ok) {
            return {false, name + ": " + h.detail};
        }
    }
    return {true, {}};
}

}  // namespace switchyard::gateway
