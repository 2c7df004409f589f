#include <catch2/catch.hpp>
int dummy_connection_test_placeholder;
