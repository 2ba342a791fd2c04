using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Scheduling.Calendars;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Scheduling.Tests.Calendars;

public class BusinessCalendarTests
{
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
    private static readonly TimeZoneInfo NewYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");

    internal static IBusinessCalendars Load(params (string Key, string? Value)[] settings)
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        return new BusinessCalendars(CalendarFactory.Load(config, Path.GetTempPath(), 2026));
    }

    private static DateTimeOffset Local(TimeZoneInfo zone, int y, int mo, int d, int h, int mi = 0)
    {
        var local = new DateTime(y, mo, d, h, mi, 0, DateTimeKind.Unspecified);
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    private static IBusinessCalendar Office() => Load(
        ("Calendars:office:TimeZone", "Europe/Berlin"),
        ("Calendars:office:WorkingHours:Monday:0", "08:00-12:00"),
        ("Calendars:office:WorkingHours:Monday:1", "13:00-17:00"),
        ("Calendars:office:WorkingHours:Tuesday:0", "08:00-12:00"),
        ("Calendars:office:WorkingHours:Tuesday:1", "13:00-17:00"),
        ("Calendars:office:WorkingHours:Wednesday:0", "08:00-12:00"),
        ("Calendars:office:WorkingHours:Wednesday:1", "13:00-17:00"),
        ("Calendars:office:WorkingHours:Thursday:0", "08:00-12:00"),
        ("Calendars:office:WorkingHours:Thursday:1", "13:00-17:00"),
        ("Calendars:office:WorkingHours:Friday:0", "08:00-14:00"),
        ("Calendars:office:Holidays:0", "2026-12-24..2026-12-26 Christmas"),
        ("Calendars:office:Holidays:1", "12-31 New Year's Eve"),
        ("Calendars:office:Holidays:2", "01-01 New Year")).Get("office");

    [Fact]
    public void The_shipped_default_calendar_is_monday_to_friday_nine_to_five_utc()
    {
        var calendars = Load();
        var cal = calendars.Default;
        Assert.Equal("default", cal.Name);
        Assert.Equal(TimeZoneInfo.Utc, cal.TimeZone);
        Assert.True(cal.IsOpen(new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero)));   // Monday 09:00 (start inclusive)
        Assert.True(cal.IsOpen(new DateTimeOffset(2026, 11, 23, 16, 59, 0, TimeSpan.Zero)));
        Assert.False(cal.IsOpen(new DateTimeOffset(2026, 11, 23, 17, 0, 0, TimeSpan.Zero)));  // end exclusive
        Assert.False(cal.IsOpen(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero))); // Saturday
        Assert.Same(cal, calendars.Get("DEFAULT"));
    }

    [Fact]
    public void Business_minutes_skip_the_lunch_break_and_the_weekend()
    {
        var cal = Office();
        // Monday 11:30 + 60 min: 30 before lunch, 30 after.
        Assert.Equal(Local(Berlin, 2026, 11, 23, 13, 30), cal.AddBusinessMinutes(Local(Berlin, 2026, 11, 23, 11, 30), 60));
        // Friday 13:30 + 60 min: 30 on Friday (closes 14:00), 30 on Monday from 08:00.
        Assert.Equal(Local(Berlin, 2026, 11, 30, 8, 30), cal.AddBusinessMinutes(Local(Berlin, 2026, 11, 27, 13, 30), 60));
        // Starting in a closed period counts from the next opening.
        Assert.Equal(Local(Berlin, 2026, 11, 30, 9, 0), cal.AddBusinessMinutes(Local(Berlin, 2026, 11, 28, 10, 0), 60));
        // Ending exactly at closing time gives the closing time.
        Assert.Equal(Local(Berlin, 2026, 11, 23, 12, 0), cal.AddBusinessMinutes(Local(Berlin, 2026, 11, 23, 11, 0), 60));
        Assert.Equal(Local(Berlin, 2026, 11, 28, 10, 0), cal.AddBusinessMinutes(Local(Berlin, 2026, 11, 28, 10, 0), 0));
    }

    [Fact]
    public void Holidays_across_the_year_end_are_closed_including_yearly_ones()
    {
        var cal = Office();
        // Wed 23 Dec 16:00 + 2h: 1h on the 23rd, 24-26 closed (holiday), 27th Sunday, Mon 28th 08:00 + 1h.
        Assert.Equal(Local(Berlin, 2026, 12, 28, 9, 0), cal.AddBusinessTime(Local(Berlin, 2026, 12, 23, 16, 0), TimeSpan.FromHours(2)));
        // Wed 30 Dec 16:00 + 2h: 31 Dec and 1 Jan 2027 are yearly holidays, then a weekend: Mon 4 Jan 09:00.
        Assert.Equal(Local(Berlin, 2027, 1, 4, 9, 0), cal.AddBusinessTime(Local(Berlin, 2026, 12, 30, 16, 0), TimeSpan.FromHours(2)));
        Assert.False(cal.IsOpen(Local(Berlin, 2027, 12, 31, 10, 0)));  // yearly holiday, next year too
        Assert.False(cal.IsOpen(Local(Berlin, 2028, 1, 1, 10, 0)));
        // 28-30 Dec are three 8-hour days; the 31st and 1st closed; 4 Jan 08:00-09:00 is one more hour.
        Assert.Equal(TimeSpan.FromHours(25), cal.BusinessTimeBetween(Local(Berlin, 2026, 12, 24, 0, 0), Local(Berlin, 2027, 1, 4, 9, 0)));
        Assert.Equal(TimeSpan.FromHours(-25), cal.BusinessTimeBetween(Local(Berlin, 2027, 1, 4, 9, 0), Local(Berlin, 2026, 12, 24, 0, 0)));
    }

    [Fact]
    public void A_round_the_clock_calendar_counts_the_real_length_of_dst_days()
    {
        var settings = Enum.GetNames<DayOfWeek>().Select(d => ($"Calendars:24x7:WorkingHours:{d}:0", (string?)"00:00-24:00"))
            .Append(("Calendars:24x7:TimeZone", "Europe/Berlin")).ToArray();
        var cal = Load(settings).Get("24x7");
        // 29 March 2026: 02:00 -> 03:00 (23-hour day); 25 October 2026: 03:00 -> 02:00 (25-hour day).
        Assert.Equal(TimeSpan.FromHours(47), cal.BusinessTimeBetween(Local(Berlin, 2026, 3, 28, 0), Local(Berlin, 2026, 3, 30, 0)));
        Assert.Equal(TimeSpan.FromHours(49), cal.BusinessTimeBetween(Local(Berlin, 2026, 10, 24, 0), Local(Berlin, 2026, 10, 26, 0)));
        // 01:30 CET + 1h of business time = 03:30 CEST (the skipped hour is not counted twice nor lost).
        var start = new DateTimeOffset(2026, 3, 29, 1, 30, 0, TimeSpan.FromHours(1));
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 3, 30, 0, TimeSpan.FromHours(2)), cal.AddBusinessTime(start, TimeSpan.FromHours(1)));
        // Days are merged across midnight into one open period.
        Assert.Single(cal.OpenPeriods(Local(Berlin, 2026, 3, 28, 0), Local(Berlin, 2026, 3, 30, 0)));
    }

    [Fact]
    public void Working_hours_that_contain_the_dst_change_follow_the_wall_clock()
    {
        var cal = Load(
            ("Calendars:night:TimeZone", "Europe/Berlin"),
            ("Calendars:night:WorkingHours:Sunday:0", "01:00-04:00")).Get("night");
        Assert.Equal(TimeSpan.FromHours(2), cal.BusinessTimeBetween(Local(Berlin, 2026, 3, 29, 0), Local(Berlin, 2026, 3, 30, 0)));
        Assert.Equal(TimeSpan.FromHours(4), cal.BusinessTimeBetween(Local(Berlin, 2026, 10, 25, 0), Local(Berlin, 2026, 10, 26, 0)));
        Assert.Equal(TimeSpan.FromHours(3), cal.BusinessTimeBetween(Local(Berlin, 2026, 11, 1, 0), Local(Berlin, 2026, 11, 2, 0)));
    }

    [Fact]
    public void Nine_oclock_after_the_us_dst_weekend_is_nine_oclock_local()
    {
        var cal = Load(("Calendars:us:TimeZone", "America/New_York")).Get("us");
        // Fri 6 March 2026 16:00 EST + 2h: 1h Friday, then Monday 9 March (EDT) 09:00 + 1h = 10:00 EDT = 14:00 UTC.
        var due = cal.AddBusinessMinutes(Local(NewYork, 2026, 3, 6, 16), 120);
        Assert.Equal(new DateTimeOffset(2026, 3, 9, 14, 0, 0, TimeSpan.Zero), due.ToUniversalTime());
        Assert.Equal(TimeSpan.FromHours(16), cal.BusinessTimeBetween(Local(NewYork, 2026, 3, 6, 9), Local(NewYork, 2026, 3, 9, 17)));
    }

    [Fact]
    public void A_paused_clock_stops_counting_and_resumes_from_where_it_stopped()
    {
        var cal = Office();
        var clock = BusinessClock.StartAt(Local(Berlin, 2026, 11, 23, 9, 0));   // Monday 09:00
        Assert.Equal(TimeSpan.FromHours(2), clock.Elapsed(cal, Local(Berlin, 2026, 11, 23, 11, 0)));

        clock = clock.Pause(cal, Local(Berlin, 2026, 11, 23, 11, 0));          // waiting on customer
        Assert.False(clock.IsRunning);
        Assert.Equal(TimeSpan.FromHours(2), clock.Elapsed(cal, Local(Berlin, 2026, 11, 25, 11, 0)));
        Assert.Null(clock.DueAt(cal, TimeSpan.FromHours(8)));

        clock = clock.Resume(Local(Berlin, 2026, 11, 24, 10, 0));              // Tuesday 10:00
        Assert.Equal(TimeSpan.FromHours(4), clock.Elapsed(cal, Local(Berlin, 2026, 11, 24, 12, 0)));
        // 8h SLA: 2h done, 6h left from Tuesday 10:00 = 10-12 (2h) + 13-17 (4h) -> Tuesday 17:00.
        Assert.Equal(Local(Berlin, 2026, 11, 24, 17, 0), clock.DueAt(cal, TimeSpan.FromHours(8)));
        Assert.Same(clock, clock.Resume(Local(Berlin, 2026, 11, 24, 11, 0)));
    }

    [Fact]
    public void Holidays_are_imported_from_an_icalendar_file_with_recurrences_and_timed_closures()
    {
        var file = Path.Combine(Path.GetTempPath(), $"crm-holidays-{Guid.NewGuid():N}.ics");
        File.WriteAllText(file, """
            BEGIN:VCALENDAR
            VERSION:2.0
            PRODID:-//CrmEngine tests//EN
            BEGIN:VEVENT
            UID:xmas@test
            SUMMARY:Christmas
            DTSTART;VALUE=DATE:20261225
            DTEND;VALUE=DATE:20261227
            RRULE:FREQ=YEARLY
            END:VEVENT
            BEGIN:VEVENT
            UID:party@test
            SUMMARY:Staff party
            DTSTART;TZID=Europe/Berlin:20261126T140000
            DTEND;TZID=Europe/Berlin:20261126T170000
            END:VEVENT
            END:VCALENDAR
            """.Replace("\n", "\r\n", StringComparison.Ordinal));
        try
        {
            var cal = Load(("Calendars:ics:TimeZone", "Europe/Berlin"), ("Calendars:ics:HolidayFiles:0", file)).Get("ics");
            Assert.False(cal.IsOpen(Local(Berlin, 2026, 12, 25, 10)));   // Friday, holiday
            Assert.False(cal.IsOpen(Local(Berlin, 2028, 12, 25, 10)));   // Monday, recurring holiday
            Assert.False(cal.IsOpen(Local(Berlin, 2028, 12, 26, 10)));   // two-day event
            Assert.True(cal.IsOpen(Local(Berlin, 2028, 12, 27, 10)));
            // Thursday 26 Nov 2026: open 09:00-14:00 only.
            Assert.Equal(TimeSpan.FromHours(5), cal.BusinessTimeBetween(Local(Berlin, 2026, 11, 26, 0), Local(Berlin, 2026, 11, 27, 0)));
            var periods = cal.OpenPeriods(Local(Berlin, 2026, 11, 26, 0), Local(Berlin, 2026, 11, 27, 0));
            Assert.Equal(new BusinessPeriod(Local(Berlin, 2026, 11, 26, 9), Local(Berlin, 2026, 11, 26, 14)), Assert.Single(periods));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("Calendars:bad:WorkingHours:Monday:0", "9-17", "Calendars:bad:WorkingHours:Monday:0")]
    [InlineData("Calendars:bad:WorkingHours:Monday:0", "17:00-09:00", "cannot cross midnight")]
    [InlineData("Calendars:bad:WorkingHours:Mondey:0", "09:00-17:00", "Calendars:bad:WorkingHours:Mondey")]
    [InlineData("Calendars:bad:TimeZone", "Mars/Olympus", "Calendars:bad:TimeZone")]
    [InlineData("Calendars:bad:Holidays:0", "2026-13-01", "Calendars:bad:Holidays:0")]
    [InlineData("Calendars:bad:HolidayFiles:0", "/nonexistent/holidays.ics", "Calendars:bad:HolidayFiles:0")]
    public void A_bad_calendar_setting_is_refused_with_its_key(string key, string value, string expected)
    {
        var ex = Assert.Throws<CalendarConfigurationException>(() => Load((key, value)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);

        var config = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();
        Assert.Contains(CalendarFactory.Check(config, null), p => $"{p.Key}: {p.Problem}".Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Unknown_calendar_names_list_the_known_ones_and_closed_calendars_refuse_arithmetic()
    {
        var calendars = Load(("Calendars:closed:WorkingHours:Monday", null));
        var ex = Assert.Throws<KeyNotFoundException>(() => calendars.Get("support"));
        Assert.Contains("closed, default", ex.Message, StringComparison.Ordinal);
        var closed = calendars.Get("closed");
        Assert.False(closed.IsOpen(new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero)));
        Assert.Null(closed.NextOpening(new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero)));
        Assert.Throws<InvalidOperationException>(() => closed.AddBusinessMinutes(new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero), 5));
    }
}
