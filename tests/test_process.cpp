#include <catch2/catch.hpp>
int dummy_process_test_placeholder;
