module conveyor/benchmarks/loadgen

go 1.21
