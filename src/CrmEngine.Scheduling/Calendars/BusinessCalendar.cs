using CrmEngine.Abstractions.Scheduling;

namespace CrmEngine.Scheduling.Calendars;

/// <summary>A working-hours span of one weekday, local time; <see cref="End"/> may be 24:00.</summary>
internal readonly record struct DaySpan(TimeSpan Start, TimeSpan End);

/// <summary>
/// The calendar arithmetic. Each local date is turned into open intervals of instants (weekday
/// spans minus full-day closures, then minus timed closures); every operation walks those
/// intervals. Local times are mapped to instants so that DST is exact: a boundary inside a
/// skipped hour moves to the end of the gap, an ambiguous opening takes the earlier instant and
/// an ambiguous closing the later one.
/// </summary>
internal sealed class BusinessCalendar : IBusinessCalendar
{
    /// <summary>How far ahead <see cref="AddBusinessTime"/> and <see cref="NextOpening"/> look before giving up.</summary>
    internal static readonly TimeSpan SearchHorizon = TimeSpan.FromDays(366 * 10);

    private static readonly TimeSpan Window = TimeSpan.FromDays(31);

    private readonly DaySpan[][] _week;
    private readonly HashSet<DateOnly> _closedDates;
    private readonly HashSet<(int Month, int Day)> _closedEveryYear;
    private readonly BusinessPeriod[] _closedIntervals;

    public BusinessCalendar(string name, TimeZoneInfo timeZone, IReadOnlyDictionary<DayOfWeek, IReadOnlyList<DaySpan>> week,
        IEnumerable<DateOnly> closedDates, IEnumerable<(int Month, int Day)> closedEveryYear, IEnumerable<BusinessPeriod> closedIntervals)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(timeZone);
        ArgumentNullException.ThrowIfNull(week);
        Name = name;
        TimeZone = timeZone;
        _week = new DaySpan[7][];
        for (var d = 0; d < 7; d++)
        {
            _week[d] = week.TryGetValue((DayOfWeek)d, out var spans) ? Normalize(spans) : [];
        }

        _closedDates = [.. closedDates];
        _closedEveryYear = [.. closedEveryYear];
        _closedIntervals = MergeSorted(closedIntervals.Where(p => p.End > p.Start).OrderBy(p => p.Start)).ToArray();
        HasWorkingHours = _week.Any(d => d.Length > 0);
    }

    public string Name { get; }

    public TimeZoneInfo TimeZone { get; }

    /// <summary>False when no weekday has working hours (every operation that searches forward then fails).</summary>
    public bool HasWorkingHours { get; }

    internal IReadOnlyList<DaySpan> SpansOf(DayOfWeek day) => _week[(int)day];

    internal int ClosedDateCount => _closedDates.Count + _closedEveryYear.Count;

    internal int ClosedIntervalCount => _closedIntervals.Length;

    public bool IsOpen(DateTimeOffset instant) => OpenPeriods(instant, instant.AddTicks(1)).Count > 0;

    public DateTimeOffset AddBusinessTime(DateTimeOffset start, TimeSpan businessTime)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(businessTime, TimeSpan.Zero);
        if (businessTime == TimeSpan.Zero)
        {
            return start;
        }

        EnsureWorkingHours();
        var remaining = businessTime;
        var cursor = start;
        var limit = start + SearchHorizon;
        while (cursor < limit)
        {
            var windowEnd = cursor + Window;
            foreach (var p in OpenPeriods(cursor, windowEnd))
            {
                if (remaining <= p.Duration)
                {
                    return p.Start + remaining;
                }

                remaining -= p.Duration;
            }

            cursor = windowEnd;
        }

        throw new InvalidOperationException(
            $"Calendar '{Name}' has not enough working time in the {SearchHorizon.TotalDays / 366:0} years after {start:O} to add {businessTime}.");
    }

    public TimeSpan BusinessTimeBetween(DateTimeOffset from, DateTimeOffset to)
    {
        if (to < from)
        {
            return -BusinessTimeBetween(to, from);
        }

        var total = TimeSpan.Zero;
        foreach (var p in OpenPeriods(from, to))
        {
            total += p.Duration;
        }

        return total;
    }

    public DateTimeOffset? NextOpening(DateTimeOffset instant)
    {
        if (!HasWorkingHours)
        {
            return null;
        }

        var cursor = instant;
        var limit = instant + SearchHorizon;
        while (cursor < limit)
        {
            var windowEnd = cursor + Window;
            var periods = OpenPeriods(cursor, windowEnd);
            if (periods.Count > 0)
            {
                return periods[0].Start;
            }

            cursor = windowEnd;
        }

        return null;
    }

    public IReadOnlyList<BusinessPeriod> OpenPeriods(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from || !HasWorkingHours)
        {
            return [];
        }

        // One day either side: a local day can start before 'from' in UTC terms and spans may reach 24:00.
        var first = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(from, TimeZone).DateTime).AddDays(-1);
        var last = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(to, TimeZone).DateTime).AddDays(1);
        var raw = new List<BusinessPeriod>();
        for (var day = first; day <= last; day = day.AddDays(1))
        {
            if (IsClosedDay(day))
            {
                continue;
            }

            foreach (var span in _week[(int)day.DayOfWeek])
            {
                var start = ToInstant(day.ToDateTime(TimeOnly.MinValue) + span.Start, latest: false);
                var end = ToInstant(day.ToDateTime(TimeOnly.MinValue) + span.End, latest: true);
                var s = start < from ? from : start;
                var e = end > to ? to : end;
                if (e > s)
                {
                    raw.Add(new BusinessPeriod(s, e));
                }
            }
        }

        raw.Sort((a, b) => a.Start.CompareTo(b.Start));
        var merged = MergeSorted(raw);
        return _closedIntervals.Length == 0 ? merged.ToList() : Subtract(merged, from, to);
    }

    private bool IsClosedDay(DateOnly day) =>
        _closedDates.Contains(day) || _closedEveryYear.Contains((day.Month, day.Day));

    private List<BusinessPeriod> Subtract(IEnumerable<BusinessPeriod> open, DateTimeOffset from, DateTimeOffset to)
    {
        var closures = _closedIntervals.Where(c => c.End > from && c.Start < to).ToList();
        var result = new List<BusinessPeriod>();
        foreach (var p in open)
        {
            var start = p.Start;
            foreach (var c in closures)
            {
                if (c.End <= start || c.Start >= p.End)
                {
                    continue;
                }

                if (c.Start > start)
                {
                    result.Add(new BusinessPeriod(start, c.Start));
                }

                start = c.End > start ? c.End : start;
                if (start >= p.End)
                {
                    break;
                }
            }

            if (start < p.End)
            {
                result.Add(new BusinessPeriod(start, p.End));
            }
        }

        return result;
    }

    private static IEnumerable<BusinessPeriod> MergeSorted(IEnumerable<BusinessPeriod> sorted)
    {
        BusinessPeriod? current = null;
        foreach (var p in sorted)
        {
            if (current is { } c && p.Start <= c.End)
            {
                current = new BusinessPeriod(c.Start, p.End > c.End ? p.End : c.End);
            }
            else
            {
                if (current is { } done)
                {
                    yield return done;
                }

                current = p;
            }
        }

        if (current is { } tail)
        {
            yield return tail;
        }
    }

    /// <summary>Maps a local wall-clock time of this calendar to an instant (see the class remarks for DST).</summary>
    internal DateTimeOffset ToInstant(DateTime local, bool latest)
    {
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        if (TimeZone.IsInvalidTime(local))
        {
            // Inside a skipped hour: the boundary moves to the first valid local minute after the gap.
            var probe = new DateTime(local.Ticks - (local.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Unspecified);
            for (var i = 0; i < 48 * 60 && TimeZone.IsInvalidTime(probe); i++)
            {
                probe = probe.AddMinutes(1);
            }

            local = probe;
        }

        if (TimeZone.IsAmbiguousTime(local))
        {
            var offsets = TimeZone.GetAmbiguousTimeOffsets(local);
            var offset = latest ? offsets.Min() : offsets.Max();
            return new DateTimeOffset(local, offset);
        }

        var utc = TimeZoneInfo.ConvertTimeToUtc(local, TimeZone);
        return new DateTimeOffset(local, local - utc);
    }

    private static DaySpan[] Normalize(IReadOnlyList<DaySpan> spans)
    {
        var sorted = spans.Where(s => s.End > s.Start).OrderBy(s => s.Start).ToList();
        var result = new List<DaySpan>();
        foreach (var s in sorted)
        {
            if (result.Count > 0 && s.Start <= result[^1].End)
            {
                var last = result[^1];
                result[^1] = last with { End = s.End > last.End ? s.End : last.End };
            }
            else
            {
                result.Add(s);
            }
        }

        return [.. result];
    }

    private void EnsureWorkingHours()
    {
        if (!HasWorkingHours)
        {
            throw new InvalidOperationException($"Calendar '{Name}' has no working hours on any weekday; business time cannot be added.");
        }
    }
}
