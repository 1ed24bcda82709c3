package dev.fp8q.cli;

import dev.fp8q.converter.report.MemoryReport;
import java.util.List;
import java.util.Locale;

/**
 * plan --budget-db --curve: memory saved against the measured end-to-end SQNR as layers are kept one by one, as a
 * self-contained SVG line plot (no fonts or scripts to fetch), with the budget as a dashed line and the planned
 * set marked.
 */
final class CurveSvg {

    /** One measured point: layers kept, bytes FP8 still saves, end-to-end SQNR in dB. */
    record Point(int kept, long savedBytes, double db) {}

    private static final int W = 720;
    private static final int H = 440;
    private static final int LEFT = 70;
    private static final int RIGHT = 20;
    private static final int TOP = 40;
    private static final int BOTTOM = 60;

    private CurveSvg() {}

    /** points: finite SQNR only, any order; chosen: the planned number of kept layers. */
    static String render(String title, List<Point> points, double budgetDb, int chosen) {
        List<Point> ps = points.stream().filter(p -> Double.isFinite(p.db()))
                .sorted(java.util.Comparator.comparingLong(Point::savedBytes)).toList();
        double maxX = Math.max(1, ps.stream().mapToLong(Point::savedBytes).max().orElse(1));
        double lo = Math.min(budgetDb, ps.stream().mapToDouble(Point::db).min().orElse(budgetDb));
        double hi = Math.max(budgetDb, ps.stream().mapToDouble(Point::db).max().orElse(budgetDb));
        lo = Math.floor(lo - 1);
        hi = Math.ceil(hi + 1);
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">%n", W, H, W, H));
        s.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>%n", W, H));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"22\" font-size=\"14\">%s</text>%n", LEFT, escape(title)));
        int x0 = LEFT;
        int y0 = H - BOTTOM;
        int x1 = W - RIGHT;
        int y1 = TOP;
        s.append(String.format(Locale.ROOT, "<path d=\"M%d %d H%d M%d %d V%d\" stroke=\"black\" fill=\"none\"/>%n", x0, y0, x1,
                x0, y0, y1));
        for (int i = 0; i <= 4; i++) {
            double v = maxX * i / 4;
            double x = sx(v, maxX);
            s.append(String.format(Locale.ROOT, "<path d=\"M%.1f %d v5\" stroke=\"black\"/><text x=\"%.1f\" y=\"%d\" "
                    + "text-anchor=\"middle\">%s</text>%n", x, y0, x, y0 + 18, MemoryReport.human((long) v)));
            double db = lo + (hi - lo) * i / 4;
            double y = sy(db, lo, hi);
            s.append(String.format(Locale.ROOT, "<path d=\"M%d %.1f h-5\" stroke=\"black\"/><text x=\"%d\" y=\"%.1f\" "
                    + "text-anchor=\"end\">%.1f</text>%n", x0, y, x0 - 8, y + 4, db));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">memory FP8 saves (the rest "
                + "kept in high precision)</text>%n", (x0 + x1) / 2, H - 18));
        s.append(String.format(Locale.ROOT, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">"
                + "end-to-end SQNR (dB)</text>%n", (y0 + y1) / 2, (y0 + y1) / 2));
        double by = sy(budgetDb, lo, hi);
        s.append(String.format(Locale.ROOT, "<path d=\"M%d %.1f H%d\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>"
                + "<text x=\"%d\" y=\"%.1f\" fill=\"#c00\" text-anchor=\"end\">budget %.2f dB</text>%n", x0, by, x1, x1,
                by - 6, budgetDb));
        StringBuilder line = new StringBuilder();
        for (Point p : ps) {
            line.append(line.isEmpty() ? "M" : " L").append(String.format(Locale.ROOT, "%.1f %.1f", sx(p.savedBytes(), maxX),
                    sy(p.db(), lo, hi)));
        }
        s.append("<path d=\"").append(line).append("\" stroke=\"#036\" stroke-width=\"2\" fill=\"none\"/>\n");
        for (Point p : ps) {
            boolean c = p.kept() == chosen;
            s.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"><title>%d kept: %s "
                    + "saved, %.2f dB</title></circle>%n", sx(p.savedBytes(), maxX), sy(p.db(), lo, hi), c ? 6 : 3,
                    c ? "#c00" : "#036", p.kept(), MemoryReport.human(p.savedBytes()), p.db()));
        }
        return s.append("</svg>\n").toString();
    }

    private static double sx(double v, double maxX) {
        return LEFT + (W - LEFT - RIGHT) * v / maxX;
    }

    private static double sy(double db, double lo, double hi) {
        return (H - BOTTOM) - (H - BOTTOM - TOP) * (db - lo) / (hi - lo);
    }

    private static String escape(String t) {
        return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
