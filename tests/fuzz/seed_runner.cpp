// Runs a fuzz target's entry point over every file of a seed directory, so
// every build (and ctest) checks the corpus, not only clang fuzzing builds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Defined by targets whose seeds have a notion of valid input (the frame
// decoders): seeds named invalid_* must be refused, every other accepted.
extern "C" int SwitchyardSeedAccepted(const std::uint8_t* data, std::size_t size) __attribute__((weak));

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " SEED_DIRECTORY\n";
        return 2;
    }
    const std::filesystem::path dir{argv[1]};
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        std::cerr << dir.string() << ": not a directory\n";
        return 1;
    }

    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.is_regular_file()) {
            files.push_back(entry.path());
        }
    }
    if (files.empty()) {
        std::cerr << dir.string() << ": no seed files\n";
        return 1;
    }
    std::sort(files.begin(), files.end());
    int failures = 0;

    for (const auto& path : files) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            std::cerr << path.string() << ": cannot open\n";
            return 1;
        }
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
        LLVMFuzzerTestOneInput(data, bytes.size());
        if (SwitchyardSeedAccepted != nullptr) {
            const bool invalid = path.filename().string().starts_with("invalid_");
            if (static_cast<bool>(SwitchyardSeedAccepted(data, bytes.size())) == invalid) {
                std::cerr << path.string() << (invalid ? ": decodes, but its name says it must not\n"
                                                       : ": does not decode (regenerate the corpus, see frame_test)\n");
                ++failures;
            }
        }
    }
    if (failures != 0) {
        return 1;
    }
    std::cout << "ran " << files.size() << " inputs from " << dir.string() << '\n';
    return 0;
}
