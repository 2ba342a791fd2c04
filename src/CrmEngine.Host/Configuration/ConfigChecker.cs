using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using CrmEngine.Core;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling.Calendars;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using NLog;
using NLog.Extensions.Logging;

namespace CrmEngine.Host.Configuration;

/// <summary>One problem with one configuration key, printed as one line.</summary>
internal sealed record ConfigProblem(string Key, string Message)
{
    public override string ToString() => $"{Key}: {Message}";
}

/// <summary>
/// Validates every options section the engine binds, naming the exact key of each problem:
/// unknown keys, values that do not convert, and data-annotation rules. The same check runs
/// before the engine starts and in <c>crm config check</c>.
/// </summary>
internal static class ConfigChecker
{
    /// <summary>The sections the engine binds and the options type behind each.</summary>
    public static readonly IReadOnlyList<(string Section, Type Type)> Sections =
    [
        (StoreOptions.Section, typeof(StoreOptions)),
        (PipelineOptions.Section, typeof(PipelineOptions)),
        (PluginHostOptions.Section, typeof(PluginHostOptions)),
        (CrmHostOptions.Section, typeof(CrmHostOptions)),
        (SchedulerOptions.Section, typeof(SchedulerOptions)),
    ];

    /// <param name="configuration">The whole configuration.</param>
    /// <param name="contentRoot">Base of relative paths (calendar holiday files); null for the current folder.</param>
    public static IReadOnlyList<ConfigProblem> Check(IConfiguration configuration, string? contentRoot = null)
    {
        var problems = new List<ConfigProblem>();
        foreach (var (section, type) in Sections)
        {
            CheckSection(configuration.GetSection(section), type, problems);
        }

        // Calendars is a dictionary of names (not one options type): each calendar is built to find its problems.
        foreach (var (key, problem) in CalendarFactory.Check(configuration, contentRoot))
        {
            problems.Add(new ConfigProblem(key, problem));
        }

        CheckPlugins(configuration.GetSection("Plugins"), problems);
        CheckNLog(configuration.GetSection("NLog"), problems);
        return problems;
    }

    private static void CheckSection(IConfigurationSection section, Type type, List<ConfigProblem> problems)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || IsCollection(p.PropertyType))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        var unconvertible = false;

        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                var known = string.Join(", ", properties.Keys.Order(StringComparer.Ordinal));
                problems.Add(new ConfigProblem(child.Path, $"unknown key (known keys of {section.Path}: {known})"));
                continue;
            }

            var target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (child.Value is null)
            {
                if (child.GetChildren().Any() && !IsCollection(target) && IsSimple(target))
                {
                    problems.Add(new ConfigProblem(child.Path, $"expects a single {Describe(target)} value, not a section"));
                    unconvertible = true;
                }

                continue;
            }

            if (IsSimple(target) && !TryConvert(child.Value, target))
            {
                problems.Add(new ConfigProblem(child.Path, $"'{child.Value}' is not a valid {Describe(target)}"));
                unconvertible = true;
            }
        }

        if (unconvertible)
        {
            return;
        }

        object? instance;
        try
        {
            instance = Activator.CreateInstance(type);
            section.Bind(instance);
        }
        catch (InvalidOperationException ex)
        {
            problems.Add(new ConfigProblem(section.Path, ex.Message));
            return;
        }

        if (instance is null)
        {
            return;
        }

        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(instance, new ValidationContext(instance), results, validateAllProperties: true))
        {
            foreach (var result in results)
            {
                var members = result.MemberNames.Any() ? result.MemberNames : [""];
                foreach (var member in members)
                {
                    var key = member.Length == 0 ? section.Path : $"{section.Path}:{member}";
                    var raw = member.Length == 0 ? null : section[member];
                    var shown = raw is null ? "" : $" (value '{raw}')";
                    problems.Add(new ConfigProblem(key, (result.ErrorMessage ?? "is not valid") + shown));
                }
            }
        }
    }

    /// <summary><c>Plugins:&lt;id&gt;:Enabled</c> must be true or false; the rest belongs to each plugin.</summary>
    private static void CheckPlugins(IConfigurationSection plugins, List<ConfigProblem> problems)
    {
        foreach (var plugin in plugins.GetChildren())
        {
            var enabled = plugin.GetSection("Enabled");
            if (enabled.Value is { } value && !bool.TryParse(value, out _))
            {
                problems.Add(new ConfigProblem(enabled.Path, $"'{value}' is not a valid boolean (true or false)"));
            }
        }
    }

    private static void CheckNLog(IConfigurationSection section, List<ConfigProblem> problems)
    {
        if (!section.Exists())
        {
            return;
        }

        try
        {
            using var factory = new LogFactory { ThrowConfigExceptions = true, ThrowExceptions = false };
            _ = new NLogLoggingConfiguration(section, factory);
        }
        catch (Exception ex) when (ex is NLogConfigurationException or InvalidOperationException or ArgumentException or FormatException or NotSupportedException)
        {
            problems.Add(new ConfigProblem(section.Path, OneLine(ex)));
        }
    }

    private static string OneLine(Exception ex)
    {
        var message = ex.Message;
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            message += " " + inner.Message;
        }

        return message.ReplaceLineEndings(" ");
    }

    private static bool IsCollection(Type type) =>
        type != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(type);

    private static bool IsSimple(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
        || type == typeof(DateTimeOffset) || type == typeof(DateTime) || type == typeof(Guid) || type == typeof(Uri);

    private static bool TryConvert(string value, Type type)
    {
        if (type == typeof(string))
        {
            return true;
        }

        if (type.IsEnum)
        {
            return Enum.TryParse(type, value, ignoreCase: true, out _);
        }

        try
        {
            _ = TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or NotSupportedException or ArgumentException or OverflowException
                                       || ex.InnerException is FormatException or OverflowException)
        {
            return false;
        }
    }

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(bool) => "boolean (true or false)",
        _ when type == typeof(int) || type == typeof(long) => "whole number",
        _ when type == typeof(double) || type == typeof(decimal) => "number",
        _ when type == typeof(TimeSpan) => "duration (hh:mm:ss, for example 00:00:30)",
        _ when type.IsEnum => $"value ({string.Join(", ", Enum.GetNames(type))})",
        _ => type.Name,
    };

    internal static string Format(IReadOnlyList<ConfigProblem> problems) =>
        string.Join(Environment.NewLine, problems.Select(p => string.Create(CultureInfo.InvariantCulture, $"configuration error: {p}")));
}
