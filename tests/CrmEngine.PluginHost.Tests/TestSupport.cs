using System.Collections.Concurrent;
using CrmEngine.Core.Storage;
using CrmEngine.Core.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost.Tests;

/// <summary>A temporary plugins folder made of real fixture plugin folders (built by the test project).</summary>
internal sealed class PluginFolders : IDisposable
{
    public static string FixturesDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public PluginFolders()
    {
        Root = Path.Combine(Path.GetTempPath(), "crm-plugin-tests", Guid.NewGuid().ToString("N"));
        Plugins = Path.Combine(Root, "plugins");
        Directory.CreateDirectory(Plugins);
    }

    public string Root { get; }
    public string Plugins { get; }

    /// <summary>
    /// The real core (LiteDB store under <c>data/</c>) and plugin host over this folder in a generic host;
    /// <paramref name="more"/> registers further concerns (scheduling, the access model) after them.
    /// </summary>
    public Microsoft.Extensions.Hosting.IHost BuildRealHost(Dictionary<string, string?> settings,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection, IConfiguration>? more = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings
        {
            ContentRootPath = Root,
            EnvironmentName = "Test",
            DisableDefaults = true,
        });
        settings["Store:DataDirectory"] = Path.Combine(Root, "data");
        settings["PluginHost:Directories:0"] = Plugins;
        builder.Configuration.AddInMemoryCollection(settings);
        CrmEngine.Core.CoreServiceCollectionExtensions.AddCrmCore(builder.Services, builder.Configuration);
        PluginHostServiceCollectionExtensions.AddCrmPluginHost(builder.Services, builder.Configuration);
        more?.Invoke(builder.Services, builder.Configuration);
        return builder.Build();
    }

    /// <summary>Copies a built fixture plugin (e.g. Fixture.Valid) into the plugins folder.</summary>
    public string AddBuilt(string fixture, string? folderName = null)
    {
        var source = Path.Combine(FixturesDirectory, fixture);
        Assert.True(Directory.Exists(source), $"fixture plugin {source} was not built into the test output");
        var target = Path.Combine(Plugins, folderName ?? fixture);
        CopyDirectory(source, target);
        return target;
    }

    /// <summary>A folder with the Fixture.Valid code and the manifest from tests/fixtures/manifests/<paramref name="name"/>.</summary>
    public string AddManifestFixture(string name)
    {
        var target = AddBuilt("Fixture.Valid", name);
        File.Copy(Path.Combine(FixturesDirectory, "manifests", name, "plugin.json"), Path.Combine(target, "plugin.json"), true);
        return target;
    }

    /// <summary>A folder with the Fixture.Valid code and the given manifest text.</summary>
    public string AddWithManifest(string folderName, string manifestJson, string code = "Fixture.Valid")
    {
        var target = AddBuilt(code, folderName);
        File.WriteAllText(Path.Combine(target, "plugin.json"), manifestJson);
        return target;
    }

    public string File1(string name) => Path.Combine(Root, name);

    public static string[] ReadLines(string path) => File.Exists(path) ? File.ReadAllLines(path) : [];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
            // Loaded plugin assemblies may still be mapped; the temp folder is cleaned later.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest, true);
        }
    }
}

/// <summary>Collects formatted log lines.</summary>
internal sealed class ListLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

    public IReadOnlyList<string> Messages => Entries.Select(e => e.Message).ToList();

    public ILogger CreateLogger(string categoryName) => new ListLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((category, logLevel, formatter(state, exception)));
    }
}

/// <summary>A <see cref="PluginManager"/> over fake core seams and a plugins folder.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public Harness(PluginFolders folders, Dictionary<string, string?>? settings = null, Action<PluginHostOptions>? options = null,
        TimeProvider? time = null)
    {
        Folders = folders;
        Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings ?? []).Build();
        Options = new PluginHostOptions
        {
            Directories = [folders.Plugins],
            StartTimeout = TimeSpan.FromSeconds(10),
            StopTimeout = TimeSpan.FromSeconds(5),
        };
        options?.Invoke(Options);
        LoggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        Time = time ?? TimeProvider.System;
        Breaker = new PluginFaultBreaker(Microsoft.Extensions.Options.Options.Create(Options), Time,
            LoggerFactory.CreateLogger<PluginFaultBreaker>());
        Manager = new PluginManager(Microsoft.Extensions.Options.Options.Create(Options), Configuration, Stores, Installed,
            Registry, Breaker, LoggerFactory, Time);
    }

    public PluginFolders Folders { get; }
    public IConfiguration Configuration { get; }
    public PluginHostOptions Options { get; }
    public ListLoggerProvider Logs { get; } = new();
    public ILoggerFactory LoggerFactory { get; }
    public TimeProvider Time { get; }
    public FakeStoreProvider Stores { get; } = new();
    public FakeInstalledPlugins Installed { get; } = new();
    public FakeHandlerRegistry Registry { get; } = new();
    public PluginFaultBreaker Breaker { get; }
    public PluginManager Manager { get; }

    public PluginInfo Plugin(string id) =>
        Manager.Find(id) ?? throw new Xunit.Sdk.XunitException($"plugin {id} not listed: {string.Join(" | ", Manager.Plugins)}");

    public Task StartAsync() => Manager.StartAsync(CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        await Manager.DisposeAsync();
        LoggerFactory.Dispose();
    }
}

internal static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, string because, int timeoutMs = 10_000)
    {
        var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail("timed out waiting until " + because);
            }

            await Task.Delay(20);
        }
    }

    public static async Task TrueAsync(Func<Task<bool>> condition, string because, int timeoutMs = 10_000)
    {
        var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!await condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail("timed out waiting until " + because);
            }

            await Task.Delay(50);
        }
    }
}
