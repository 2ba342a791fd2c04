using System.Diagnostics.CodeAnalysis;
using CrmEngine.Abstractions.Scheduling;

namespace CrmEngine.Scheduling.Calendars;

/// <summary>The calendars of the engine, built once at start from section <c>Calendars</c>.</summary>
public sealed class BusinessCalendars : IBusinessCalendars
{
    private readonly IReadOnlyDictionary<string, IBusinessCalendar> _calendars;

    public BusinessCalendars(IReadOnlyDictionary<string, IBusinessCalendar> calendars)
    {
        ArgumentNullException.ThrowIfNull(calendars);
        var copy = new Dictionary<string, IBusinessCalendar>(calendars, StringComparer.OrdinalIgnoreCase);
        if (!copy.ContainsKey(CalendarFactory.DefaultName))
        {
            copy[CalendarFactory.DefaultName] = CalendarFactory.CreateShippedDefault();
        }

        _calendars = copy;
        Default = copy[CalendarFactory.DefaultName];
        Names = copy.Keys.Order(StringComparer.OrdinalIgnoreCase).ToArray();
    }

    public IBusinessCalendar Default { get; }

    public IReadOnlyCollection<string> Names { get; }

    public IBusinessCalendar Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryGet(name, out var calendar)
            ? calendar
            : throw new KeyNotFoundException($"No calendar is named '{name}'. Known calendars: {string.Join(", ", Names)}.");
    }

    public bool TryGet(string name, [NotNullWhen(true)] out IBusinessCalendar? calendar) =>
        _calendars.TryGetValue(name ?? "", out calendar);
}
