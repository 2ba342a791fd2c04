using Microsoft.Extensions.Configuration;
using NLog;
using NLog.Config;
using NLog.Extensions.Logging;
using NLog.Layouts;
using NLog.Targets;

namespace CrmEngine.Host.Hosting;

/// <summary>
/// NLog from the <c>NLog</c> section of the configuration. The variable <c>logDirectory</c>
/// (default <c>logs</c>) is resolved against the content root so that relative log folders land
/// beside appsettings.json whatever the working directory is.
/// </summary>
internal static class CrmLogging
{
    public const string LogDirectoryVariable = "logDirectory";

    public static LogFactory Create(IConfiguration configuration, string contentRoot)
    {
        var factory = new LogFactory();
        var section = configuration.GetSection("NLog");
        LoggingConfiguration config = section.Exists() ? new NLogLoggingConfiguration(section, factory) : Fallback(factory);

        var logDirectory = LogDirectoryOf(config) ?? "logs";
        config.Variables[LogDirectoryVariable] = Path.GetFullPath(logDirectory, contentRoot);
        factory.Configuration = config;
        return factory;
    }

    /// <summary>The <c>logDirectory</c> variable as configured (maybe relative), or null when it is not set.</summary>
    public static string? LogDirectoryOf(LoggingConfiguration config)
    {
        if (config.Variables.TryGetValue(LogDirectoryVariable, out var layout) && layout is not null)
        {
            var rendered = layout.Render(LogEventInfo.CreateNullEvent());
            if (!string.IsNullOrWhiteSpace(rendered))
            {
                return rendered;
            }
        }

        return null;
    }

    /// <summary>Used only when appsettings.json has no NLog section: console, and a daily file kept 14 days.</summary>
    private static LoggingConfiguration Fallback(LogFactory factory)
    {
        var config = new LoggingConfiguration(factory);
        var console = new ConsoleTarget("console")
        {
            // Full logger names (two plugins' loggers must not look alike); the exception's message only when the
            // message does not already carry it.
            Layout = "${longdate} ${level:uppercase=true:padding=-5} ${logger}: ${message}" +
                     "${onexception:inner=${when:when=not contains('${message}','${exception:format=Message}'):inner= ${exception:format=Message}}}",
        };
        var file = new FileTarget("file")
        {
            FileName = Layout.FromString("${var:logDirectory}/crm.log"),
            Layout = "${longdate} ${level:uppercase=true:padding=-5} ${logger}: ${message}${onexception:inner=${newline}${exception:format=ToString}}",
            ArchiveAboveSize = 10 * 1024 * 1024,
            ArchiveEvery = FileArchivePeriod.Day,
            MaxArchiveFiles = 14,
        };
        config.AddRule(NLog.LogLevel.Info, NLog.LogLevel.Fatal, console);
        config.AddRule(NLog.LogLevel.Info, NLog.LogLevel.Fatal, file);
        return config;
    }
}
