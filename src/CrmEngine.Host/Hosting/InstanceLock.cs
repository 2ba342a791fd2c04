using System.Globalization;
using System.Text;

namespace CrmEngine.Host.Hosting;

/// <summary>
/// One engine per data folder: the running engine holds <c>crm.lock</c> in the data folder open
/// exclusively (an OS lock, released by the OS when the process dies, even on SIGKILL) and writes its
/// pid into <c>crm.pid</c> beside it. Taken before the database is opened; commands check it before touching the file.
/// </summary>
internal sealed class InstanceLock : IDisposable
{
    public const string FileName = "crm.lock";

    private readonly FileStream _stream;

    private InstanceLock(FileStream stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    public string Path { get; }

    public static string PathFor(string dataDirectory) => System.IO.Path.Combine(dataDirectory, FileName);

    private static string PidPath(string lockPath) => System.IO.Path.ChangeExtension(lockPath, ".pid");

    /// <summary>Takes the lock, or explains in one line who holds it.</summary>
    public static InstanceLock Acquire(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = PathFor(dataDirectory);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new CommandRefusedException($"another CrmEngine is already running on {dataDirectory}{HolderText(path)}; stop it first.");
        }
        catch (UnauthorizedAccessException)
        {
            throw new CommandRefusedException($"cannot lock {path}: permission denied (does the service account own {dataDirectory}?).");
        }

        // The lock itself cannot be read by others while held (OS lock): the pid goes beside it.
        try
        {
            File.WriteAllText(PidPath(path), Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n", Encoding.ASCII);
        }
        catch (IOException)
        {
            // Informative only.
        }

        return new InstanceLock(stream, path);
    }

    /// <summary>True when a running engine holds the lock of <paramref name="dataDirectory"/>.</summary>
    public static bool IsHeld(string dataDirectory, out string holder)
    {
        var path = PathFor(dataDirectory);
        holder = "";
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            holder = HolderText(path);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string HolderText(string path)
    {
        try
        {
            var pid = File.Exists(PidPath(path)) ? File.ReadAllText(PidPath(path)).Trim() : null;
            return string.IsNullOrEmpty(pid) ? "" : $" (pid {pid})";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        // The file stays: deleting it would race with a starting engine. Its content is only informative.
    }
}
