using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Scheduling.Jobs;

namespace CrmEngine.Scheduling.Admin;

/// <summary>Plain-text renderings for the command line (fixed columns, invariant culture, UTC instants).</summary>
public static class SchedulingText
{
    public static string Jobs(IReadOnlyList<JobInfo> jobs)
    {
        if (jobs.Count == 0)
        {
            return "  (no jobs)\n";
        }

        var rows = jobs.Select(j => new[]
        {
            j.Id, j.Owner, j.Kind, j.State.ToString(), Instant(j.DueAt), j.LastOutcome?.ToString() ?? "-",
            j.Attempt > 0 ? j.Attempt.ToString(CultureInfo.InvariantCulture) : "", j.Schedule.ToString(),
        }).ToList();
        return Table(["ID", "OWNER", "KIND", "STATE", "DUE (UTC)", "LAST", "FAILS", "SCHEDULE"], rows);
    }

    public static string Job(JobDetails details)
    {
        ArgumentNullException.ThrowIfNull(details);
        var j = details.Job;
        var sb = new StringBuilder();
        void Line(string name, string? value) => sb.Append(CultureInfo.InvariantCulture, $"  {name,-12} {value ?? "-"}\n");
        Line("id", j.Id);
        Line("owner", j.Owner);
        Line("kind", j.Kind);
        Line("state", j.State.ToString());
        Line("schedule", j.Schedule.ToString());
        Line("misfire", j.Misfire.ToString());
        Line("unique key", j.UniqueKey);
        Line(j.State == JobState.Running ? "lease until" : "due", Instant(j.DueAt));
        Line("occurrence", Instant(j.Occurrence));
        Line("failures", j.Attempt.ToString(CultureInfo.InvariantCulture));
        Line("runs", j.RunCount.ToString(CultureInfo.InvariantCulture));
        Line("last run", j.LastRunAt is null ? null : $"{Instant(j.LastRunAt)} {j.LastOutcome}");
        Line("last error", j.LastError);
        Line("lease owner", j.LeaseOwner);
        Line("payload", j.Payload is { Length: > 200 } p ? p[..200] + "..." : j.Payload);
        sb.Append("  recent runs:\n");
        if (details.Runs.Count == 0)
        {
            sb.Append("    (none)\n");
            return sb.ToString();
        }

        var rows = details.Runs.Select(r => new[]
        {
            Instant(r.StartedAt), Instant(r.EndedAt), r.Outcome.ToString(), r.Attempt.ToString(CultureInfo.InvariantCulture), r.Node, r.Error ?? "",
        }).ToList();
        sb.Append(Table(["STARTED (UTC)", "ENDED", "OUTCOME", "TRY", "NODE", "ERROR"], rows, indent: "    "));
        return sb.ToString();
    }

    public static string Calendar(CalendarPeriods periods)
    {
        ArgumentNullException.ThrowIfNull(periods);
        var zone = TimeZoneInfo.FindSystemTimeZoneById(periods.TimeZone);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"calendar {periods.Name} ({periods.TimeZone}), local times:\n");
        var byDay = periods.Periods
            .Select(p => (Start: TimeZoneInfo.ConvertTime(p.Start, zone), End: TimeZoneInfo.ConvertTime(p.End, zone)))
            .GroupBy(p => DateOnly.FromDateTime(p.Start.DateTime))
            .ToDictionary(g => g.Key, g => g.ToList());
        var first = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(periods.From, zone).DateTime);
        var last = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(periods.To, zone).DateTime);
        for (var day = first; day < last; day = day.AddDays(1))
        {
            var text = byDay.TryGetValue(day, out var spans)
                ? string.Join(", ", spans.Select(s => $"{s.Start:HH:mm}-{(s.End.Date > s.Start.Date ? "24:00" : s.End.ToString("HH:mm", CultureInfo.InvariantCulture))}"))
                : "closed";
            sb.Append(CultureInfo.InvariantCulture, $"  {day:yyyy-MM-dd} {day.DayOfWeek.ToString()[..3]}  {text}\n");
        }

        var total = periods.Periods.Aggregate(TimeSpan.Zero, (a, p) => a + p.Duration);
        sb.Append(CultureInfo.InvariantCulture, $"  open {total.TotalHours:0.##} h in {last.DayNumber - first.DayNumber} days\n");
        return sb.ToString();
    }

    public static string Health(SchedulerHealth h)
    {
        ArgumentNullException.ThrowIfNull(h);
        return string.Create(CultureInfo.InvariantCulture,
            $"scheduler on {h.NodeId}: {h.Due} due, {h.Running} running, {h.Parked} parked, {h.Paused} paused; " +
            $"oldest overdue {(h.OldestOverdue is { } o ? o.ToString(@"d\.hh\:mm\:ss", CultureInfo.InvariantCulture) : "none")}; next due {Instant(h.NextDue)}");
    }

    private static string Instant(DateTimeOffset? value) =>
        value is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-";

    private static string Table(string[] header, List<string[]> rows, string indent = "  ")
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Row(string[] cells) => sb.Append(indent).Append(string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        Row(header);
        rows.ForEach(Row);
        return sb.ToString();
    }
}
