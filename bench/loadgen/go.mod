module inlet/bench/loadgen

go 1.26
