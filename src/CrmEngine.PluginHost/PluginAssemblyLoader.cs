using System.Reflection;
using CrmEngine.Abstractions;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>Loads a plugin folder's entry assembly in its own load context and finds its <see cref="CrmPlugin"/> type.</summary>
internal static class PluginAssemblyLoader
{
    /// <summary>
    /// Types whose assemblies (and their references) come from the host, so that the plugin and the
    /// host agree on the SDK contracts and the Microsoft.Extensions abstractions.
    /// </summary>
    internal static readonly Type[] SharedTypes =
    [
        typeof(CrmSdk), typeof(CrmPlugin), typeof(IPluginBuilder), typeof(IPluginContext), typeof(IPluginWorker),
        typeof(ICrmStore), typeof(IEntity), typeof(WriteEvent<>), typeof(IWriteHandler<>),
        typeof(IServiceCollection), typeof(IServiceProvider), typeof(ServiceCollection),
        typeof(ServiceProvider), typeof(ILogger), typeof(ILogger<>), typeof(ILoggerFactory), typeof(IConfiguration),
        typeof(ConfigurationBinder), typeof(IOptions<>), typeof(OptionsBuilder<>),
        typeof(OptionsBuilderConfigurationExtensions), typeof(OptionsBuilderDataAnnotationsExtensions),
        typeof(TimeProvider),
    ];

    public static PluginLoader CreateLoader(string assemblyPath, bool unloadable) =>
        PluginLoader.CreateFromAssemblyFile(assemblyPath, SharedTypes, config =>
        {
            config.IsUnloadable = unloadable;
            config.LoadInMemory = unloadable;
        });

    /// <summary>The single public, concrete <see cref="CrmPlugin"/> subclass with a parameterless constructor, or an error.</summary>
    public static Type FindEntryType(Assembly assembly, string entryFile)
    {
        Type?[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            types = ex.Types;
        }

        var found = types.OfType<Type>()
            .Where(t => t.IsClass && !t.IsAbstract && typeof(CrmPlugin).IsAssignableFrom(t))
            .ToList();
        if (found.Count == 0)
        {
            throw new PluginLoadException($"no CrmPlugin subclass in {entryFile}");
        }

        if (found.Count > 1)
        {
            throw new PluginLoadException($"more than one CrmPlugin subclass in {entryFile}: {string.Join(", ", found.Select(t => t.FullName))}");
        }

        var type = found[0];
        if (!type.IsPublic || type.GetConstructor(Type.EmptyTypes) is null)
        {
            throw new PluginLoadException($"{type.FullName} in {entryFile} must be public with a public parameterless constructor");
        }

        return type;
    }

    /// <summary>Loads the entry assembly and returns the entry type; load problems become <see cref="PluginLoadException"/>.</summary>
    public static (PluginLoader Loader, Type EntryType) Load(string folder, string entryAssembly, bool unloadable)
    {
        var path = Path.Combine(folder, entryAssembly);
        PluginLoader? loader = null;
        try
        {
            loader = CreateLoader(path, unloadable);
            var assembly = loader.LoadDefaultAssembly();
            return (loader, FindEntryType(assembly, entryAssembly));
        }
        catch (PluginLoadException)
        {
            loader?.Dispose();
            throw;
        }
        catch (Exception ex) when (ex is BadImageFormatException or FileLoadException or FileNotFoundException
                                       or IOException or TypeLoadException or InvalidOperationException or ArgumentException)
        {
            loader?.Dispose();
            throw new PluginLoadException($"cannot load {entryAssembly}: {GuardedCall.Describe(ex)}", ex);
        }
    }

    /// <summary>Inspect-only check: loads the entry assembly in a collectible context, finds the entry type, unloads.</summary>
    public static string? CheckEntry(string folder, string entryAssembly)
    {
        try
        {
            var (loader, _) = Load(folder, entryAssembly, unloadable: true);
            loader.Dispose();
            return null;
        }
        catch (PluginLoadException ex)
        {
            return ex.Message;
        }
    }
}

/// <summary>The entry assembly cannot be used: the message is the one-line reason.</summary>
internal sealed class PluginLoadException : Exception
{
    public PluginLoadException(string message) : base(message) { }
    public PluginLoadException(string message, Exception inner) : base(message, inner) { }
    public PluginLoadException() { }
}
