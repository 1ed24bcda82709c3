package dev.fp8q.converter.quant;

/** One chunk's error figures, summed in chunk order afterwards so a tensor's figures do not depend on threads. */
public final class ChunkStats {

    /** Sum of x^2 over the source values. */
    public double signal;
    /** Sum of (x - code * scale)^2. */
    public double noise;
    /** Source values that are not zero. */
    public long nonzero;
    /** Nonzero source values whose code is zero. */
    public long underflow;

    /** The chunks' figures summed in array order: the same at any thread count. */
    static ChunkStats sum(ChunkStats[] chunks) {
        ChunkStats total = new ChunkStats();
        for (ChunkStats s : chunks) {
            total.add(s);
        }
        return total;
    }

    public void add(ChunkStats o) {
        signal += o.signal;
        noise += o.noise;
        nonzero += o.nonzero;
        underflow += o.underflow;
    }
}
