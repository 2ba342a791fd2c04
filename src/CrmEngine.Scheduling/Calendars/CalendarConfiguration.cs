using System.Globalization;
using CrmEngine.Abstractions.Scheduling;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Scheduling.Calendars;

/// <summary>
/// One calendar in section <c>Calendars:&lt;name&gt;</c>. Example:
/// <code>
/// "Calendars": {
///   "default": {
///     "TimeZone": "Europe/Berlin",
///     "WorkingHours": { "Monday": [ "08:00-12:00", "13:00-17:00" ], "Friday": [ "08:00-14:00" ] },
///     "Holidays": [ "2026-12-25 Christmas", "01-01 New Year (every year)", "2026-12-28..2026-12-31 Year-end closure" ],
///     "HolidayFiles": [ "calendars/holidays-de.ics" ]
///   }
/// }
/// </code>
/// </summary>
public sealed class CalendarDefinition
{
    /// <summary>IANA (or Windows) time zone id; default UTC.</summary>
    public string? TimeZone { get; set; }

    /// <summary>Weekday name to spans <c>HH:mm-HH:mm</c> (end may be <c>24:00</c>). Absent: Monday-Friday 09:00-17:00. A day not listed is closed.</summary>
    public Dictionary<string, string[]>? WorkingHours { get; set; }

    /// <summary><c>yyyy-MM-dd</c>, <c>MM-dd</c> (every year) or <c>yyyy-MM-dd..yyyy-MM-dd</c>, optionally followed by a space and a name.</summary>
    public List<string> Holidays { get; set; } = [];

    /// <summary>iCalendar (.ics) files whose events close the calendar; relative paths are taken from the content root.</summary>
    public List<string> HolidayFiles { get; set; } = [];
}

/// <summary>A calendar definition that cannot be used; the message names the configuration key.</summary>
public sealed class CalendarConfigurationException : Exception
{
    public CalendarConfigurationException() { Key = ""; Problem = ""; }
    public CalendarConfigurationException(string message) : base(message) { Key = ""; Problem = message; }
    public CalendarConfigurationException(string message, Exception inner) : base(message, inner) { Key = ""; Problem = message; }

    public CalendarConfigurationException(string key, string problem, Exception? inner = null) : base($"{key}: {problem}", inner)
    {
        Key = key;
        Problem = problem;
    }

    /// <summary>The configuration key, for example <c>Calendars:support:WorkingHours:Monday:0</c>.</summary>
    public string Key { get; }

    /// <summary>What is wrong, without the key.</summary>
    public string Problem { get; }
}

/// <summary>Builds <see cref="IBusinessCalendar"/>s from configuration.</summary>
public static class CalendarFactory
{
    public const string Section = "Calendars";
    public const string DefaultName = "default";

    private static readonly DaySpan[] NineToFive = [new(TimeSpan.FromHours(9), TimeSpan.FromHours(17))];

    /// <summary>The shipped calendar: Monday-Friday 09:00-17:00 UTC, no holidays.</summary>
    public static IBusinessCalendar CreateShippedDefault() => Build(DefaultName, new CalendarDefinition(), null, DateTimeOffset.UtcNow.Year);

    /// <summary>Every calendar of section <c>Calendars</c>, with <c>default</c> added when not configured.</summary>
    /// <exception cref="CalendarConfigurationException">A bad value; the message names the key.</exception>
    public static IReadOnlyDictionary<string, IBusinessCalendar> Load(IConfiguration configuration, string? contentRoot, int currentYear)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var result = new Dictionary<string, IBusinessCalendar>(StringComparer.OrdinalIgnoreCase);
        foreach (var child in configuration.GetSection(Section).GetChildren())
        {
            CalendarDefinition definition;
            try
            {
                definition = child.Get<CalendarDefinition>() ?? new CalendarDefinition();
            }
            catch (InvalidOperationException ex)
            {
                throw new CalendarConfigurationException(child.Path, $"{ex.Message}", ex);
            }

            result[child.Key] = Build(child.Key, definition, contentRoot, currentYear);
        }

        if (!result.ContainsKey(DefaultName))
        {
            result[DefaultName] = Build(DefaultName, new CalendarDefinition(), contentRoot, currentYear);
        }

        return result;
    }

    /// <summary>Every problem of section <c>Calendars</c>: the key and what is wrong (empty when all calendars load).</summary>
    public static IReadOnlyList<(string Key, string Problem)> Check(IConfiguration configuration, string? contentRoot)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var problems = new List<(string, string)>();
        foreach (var child in configuration.GetSection(Section).GetChildren())
        {
            try
            {
                Build(child.Key, child.Get<CalendarDefinition>() ?? new CalendarDefinition(), contentRoot, DateTimeOffset.UtcNow.Year);
            }
            catch (CalendarConfigurationException ex)
            {
                problems.Add((ex.Key, ex.Problem));
            }
            catch (InvalidOperationException ex)
            {
                problems.Add((child.Path, ex.Message));
            }
        }

        return problems;
    }

    /// <summary>Builds one calendar; <paramref name="currentYear"/> centres the window iCalendar recurrences are expanded in.</summary>
    public static IBusinessCalendar Build(string name, CalendarDefinition definition, string? contentRoot, int currentYear)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(definition);
        var key = $"{Section}:{name}";
        var zone = ResolveTimeZone(definition.TimeZone, $"{key}:TimeZone");
        var week = ParseWeek(definition.WorkingHours, $"{key}:WorkingHours");

        var dates = new List<DateOnly>();
        var annual = new List<(int, int)>();
        for (var i = 0; i < definition.Holidays.Count; i++)
        {
            ParseHoliday(definition.Holidays[i], $"{key}:Holidays:{i}", dates, annual);
        }

        var intervals = new List<BusinessPeriod>();
        for (var i = 0; i < definition.HolidayFiles.Count; i++)
        {
            var path = definition.HolidayFiles[i];
            var full = Path.IsPathRooted(path) ? path : Path.Combine(contentRoot ?? Directory.GetCurrentDirectory(), path);
            IcsHolidayImport.Import(full, $"{key}:HolidayFiles:{i}", zone, currentYear, dates, intervals);
        }

        return new BusinessCalendar(name, zone, week, dates, annual, intervals);
    }

    internal static TimeZoneInfo ResolveTimeZone(string? id, string key)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id.Trim());
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new CalendarConfigurationException(key, $"'{id}' is not a known time zone id (use an IANA id such as 'Europe/Berlin' or 'America/New_York').", ex);
        }
    }

    private static Dictionary<DayOfWeek, IReadOnlyList<DaySpan>> ParseWeek(Dictionary<string, string[]>? hours, string key)
    {
        var week = new Dictionary<DayOfWeek, IReadOnlyList<DaySpan>>();
        if (hours is null)
        {
            for (var d = DayOfWeek.Monday; d <= DayOfWeek.Friday; d++)
            {
                week[d] = NineToFive;
            }

            return week;
        }

        foreach (var (dayName, spans) in hours)
        {
            if (!Enum.TryParse<DayOfWeek>(dayName, ignoreCase: true, out var day) || int.TryParse(dayName, out _))
            {
                throw new CalendarConfigurationException($"{key}:{dayName}", $"'{dayName}' is not a weekday (use Monday ... Sunday).");
            }

            var list = new List<DaySpan>();
            for (var i = 0; i < (spans?.Length ?? 0); i++)
            {
                list.Add(ParseSpan(spans![i], $"{key}:{dayName}:{i}"));
            }

            week[day] = list;
        }

        return week;
    }

    internal static DaySpan ParseSpan(string text, string key)
    {
        var parts = (text ?? "").Split('-', StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !TryParseClock(parts[0], out var start) || !TryParseClock(parts[1], out var end))
        {
            throw new CalendarConfigurationException(key, $"'{text}' is not a span; write HH:mm-HH:mm, for example 09:00-17:30 (end may be 24:00).");
        }

        if (end <= start)
        {
            throw new CalendarConfigurationException(key, $"'{text}' ends before it starts; a span cannot cross midnight (split it, ending the first at 24:00).");
        }

        return new DaySpan(start, end);
    }

    private static bool TryParseClock(string text, out TimeSpan value)
    {
        value = default;
        if (text == "24:00")
        {
            value = TimeSpan.FromHours(24);
            return true;
        }

        if (TimeOnly.TryParseExact(text, ["HH:mm", "H:mm"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
        {
            value = t.ToTimeSpan();
            return true;
        }

        return false;
    }

    internal static void ParseHoliday(string text, string key, List<DateOnly> dates, List<(int, int)> annual)
    {
        var trimmed = (text ?? "").Trim();
        var token = trimmed.Split(' ', 2)[0];
        var range = token.Split("..");
        if (range.Length == 2 && TryDate(range[0], out var from) && TryDate(range[1], out var to))
        {
            if (to < from || to.DayNumber - from.DayNumber > 366)
            {
                throw new CalendarConfigurationException(key, $"'{text}' is not a range of at most one year from the first to the last date.");
            }

            for (var d = from; d <= to; d = d.AddDays(1))
            {
                dates.Add(d);
            }

            return;
        }

        if (range.Length == 1 && TryDate(token, out var date))
        {
            dates.Add(date);
            return;
        }

        if (range.Length == 1 && DateOnly.TryParseExact("2000-" + token, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var md))
        {
            annual.Add((md.Month, md.Day));
            return;
        }

        throw new CalendarConfigurationException(key,
            $"'{text}' is not a holiday; write yyyy-MM-dd, MM-dd (every year) or yyyy-MM-dd..yyyy-MM-dd, optionally followed by a name.");
    }

    private static bool TryDate(string s, out DateOnly d) =>
        DateOnly.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out d);
}
