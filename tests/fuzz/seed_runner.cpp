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

    for (const auto& path : files) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            std::cerr << path.string() << ": cannot open\n";
            return 1;
        }
        const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::cout << "ran " << files.size() << " inputs from " << dir.string() << '\n';
    return 0;
}
