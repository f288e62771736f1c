#include "cli/cli.hpp"

int main(int argc, char** argv) {
    return nodectl::cli::main(argc, argv);
}
